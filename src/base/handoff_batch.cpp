#include "base/handoff_batch.hpp"

#include <utility>

namespace ordo {

namespace {
thread_local handoff_batch* t_current = nullptr;
}  // namespace

handoff_batch::handoff_batch() : outer_(t_current) {
  if (!outer_) t_current = this;
}

handoff_batch::~handoff_batch() {
  if (outer_) return;  // the outer batch hands off (nothing was added here)
  t_current = nullptr;
  for (auto& t : targets_)
    t.deliver_to(std::move(t.calls));
}

handoff_batch* handoff_batch::current() {
  return t_current;
}

bool handoff_batch::add(const void* target, call& c) {
  for (auto& t : targets_) {
    if (t.target == target) {
      t.calls.push_back(std::move(c));
      return true;
    }
  }
  return false;
}

void handoff_batch::add_target(const void* target, deliver deliver_to, call c) {
  targets_.push_back({target, std::move(deliver_to), {}});
  targets_.back().calls.push_back(std::move(c));
}

}  // namespace ordo
