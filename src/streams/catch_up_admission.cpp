#include "streams/catch_up_admission.hpp"

#include <cassert>

namespace ordo {

catch_up_admission::catch_up_admission(std::size_t max_active) : max_active_(max_active) {
  assert(max_active > 0);
}

std::optional<catch_up_admission::ticket> catch_up_admission::acquire(
    std::function<void()> on_admitted) {
  mutex_lock lock(mu_);
  if (active_ < max_active_) {
    assert(line_.empty());
    ++active_;
    return std::nullopt;
  }
  ticket id = next_ticket_++;
  line_.push_back({id, std::move(on_admitted)});
  return id;
}

bool catch_up_admission::cancel(ticket t) {
  mutex_lock lock(mu_);
  for (auto it = line_.begin(); it != line_.end(); ++it) {
    if (it->id == t) {
      line_.erase(it);
      return true;
    }
  }
  return false;
}

void catch_up_admission::release() {
  std::function<void()> wake;
  {
    mutex_lock lock(mu_);
    assert(active_ > 0);
    if (line_.empty()) {
      --active_;
      return;
    }
    // The slot passes to the first in line without ever being free (invariant 2).
    wake = std::move(line_.front().on_admitted);
    line_.pop_front();
  }
  wake();
}

std::size_t catch_up_admission::active() const {
  mutex_lock lock(mu_);
  return active_;
}

std::size_t catch_up_admission::waiting() const {
  mutex_lock lock(mu_);
  return line_.size();
}

}  // namespace ordo
