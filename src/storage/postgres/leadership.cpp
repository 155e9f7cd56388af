#include "storage/postgres/leadership.hpp"

#include <spdlog/spdlog.h>

#include "storage/postgres/connection.hpp"

namespace ordo::postgres {

std::unique_ptr<leadership> leadership::start(leadership_options options, on_change change) {
  std::unique_ptr<leadership> l(new leadership(std::move(options), std::move(change)));
  if (!l->thread_.start("ordo-pg-leader", [p = l.get()] { p->run(); })) return nullptr;
  return l;
}

leadership::leadership(leadership_options options, on_change change)
    : options_(std::move(options)), change_(std::move(change)) {}

leadership::~leadership() {
  thread_.stop();
}

void leadership::set_leading(bool leading) {
  if (leading_.exchange(leading) == leading) return;
  change_(leading);
}

void leadership::run() {
  const std::string where = redacted(options_.url);
  const std::string lock = std::to_string(options_.lock);
  while (!thread_.stopping()) {
    auto db = connection::open(options_.url, {.application_name = "ordo leadership"});
    if (!db) {
      spdlog::warn("leadership connection to {} failed: {}; retrying", where, db.error().message);
      if (!thread_.wait(options_.check)) break;
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
      if (!thread_.wait(options_.check)) {
        set_leading(false);
        return;  // the connection closes with `db`, and the lock with it
      }
    }
    if (!thread_.wait(options_.check)) break;
  }
  set_leading(false);
}

}  // namespace ordo::postgres
