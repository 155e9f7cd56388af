#include "storage/postgres/leadership.hpp"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "base/thread_name.hpp"
#include "storage/postgres/connection.hpp"

namespace ordo::postgres {

std::unique_ptr<leadership> leadership::start(leadership_options options, on_change change) {
  std::unique_ptr<leadership> l(new leadership(std::move(options), std::move(change)));
  if (::pipe(l->stop_fds_) != 0) return nullptr;
  l->thread_ = std::thread([p = l.get()] {
    name_this_thread("ordo-pg-leader");
    p->run();
  });
  return l;
}

leadership::leadership(leadership_options options, on_change change)
    : options_(std::move(options)), change_(std::move(change)) {}

leadership::~leadership() {
  stopping_ = true;
  if (stop_fds_[1] >= 0) (void)!::write(stop_fds_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : stop_fds_)
    if (fd >= 0) ::close(fd);
}

bool leadership::wait(std::chrono::milliseconds d) {
  pollfd stop{stop_fds_[0], POLLIN, 0};
  return ::poll(&stop, 1, static_cast<int>(d.count())) == 0 && !stopping_;
}

void leadership::set_leading(bool leading) {
  if (leading_.exchange(leading) == leading) return;
  change_(leading);
}

void leadership::run() {
  const std::string where = redacted(options_.url);
  const std::string lock = std::to_string(options_.lock);
  while (!stopping_) {
    auto db = connection::open(options_.url, {.application_name = "ordo leadership"});
    if (!db) {
      spdlog::warn("leadership connection to {} failed: {}; retrying", where, db.error().message);
      if (!wait(options_.check)) break;
      continue;
    }
    // Follow until the lock is ours, then lead until the connection goes.
    for (;;) {
      auto held = leading_ ? db->query_int64("SELECT 1")
                           : db->query_int64("SELECT pg_try_advisory_lock($1)::int", {lock});
      if (!held) {
        if (leading_) {
          spdlog::warn(
              "the connection holding the background-work lock was lost ({}); this "
              "node stops leading",
              held.error().message);
        }
        set_leading(false);
        break;  // reconnect
      }
      if (!leading_ && held->value_or(0) == 1) {
        spdlog::info("this node now runs the cluster's background work");
        set_leading(true);
      }
      if (!wait(options_.check)) {
        set_leading(false);
        return;  // the connection closes with `db`, and the lock with it
      }
    }
    if (!wait(options_.check)) break;
  }
  set_leading(false);
}

}  // namespace ordo::postgres
