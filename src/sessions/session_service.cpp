// The session service's life (construction, start, stop) and its counts for /metrics. Each
// entity's operations are defined in the file named after it (see session_jobs.hpp).
#include "sessions/session_service.hpp"

#include <spdlog/spdlog.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "base/thread_name.hpp"
#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"
#include "storage/sqlite/managed_streams.hpp"

namespace ordo::sessions {

session_service::session_service(stream_engine& engine, session_service_options options)
    : engine_(engine), options_(options) {
  // Sessions' streams must be ones clients cannot write (managed_streams.hpp). Only code sets
  // the prefix, so a mismatch is a wiring mistake, not a condition to handle.
  const std::string& prefix = engine_.options().managed_stream_prefix;
  if (prefix.empty() || !sqlite::k_managed_namespace.starts_with(prefix)) {
    spdlog::critical(
        "the stream engine's managed_stream_prefix '{}' does not cover the session streams under "
        "'{}': clients could write them",
        prefix, sqlite::k_managed_namespace);
    std::abort();
  }
}

session_service::~session_service() {
  stop();
}

std::string session_service::events_stream_path(std::string_view session_id) {
  return sqlite::session_events_path(session_id);
}

void session_service::start() {
  ensure_change_feed();
  // A replacement database without a change feed gets one (submitted, not waited for: the hook
  // runs on the writer thread).
  engine_.on_adopted([this] { submit_change_feed_job({}); });
  // Where nodes share the storage, the background worker reaps once it is chosen.
  if (!engine_.storage_shared()) reap_once();
  reaper_ = std::thread([this] {
    name_this_thread("ordo-reaper");
    reaper_loop();
  });
}

void session_service::stop() {
  {
    mutex_lock lock(mu_);
    // Once stopped, the engine may be gone (ordo serve destroys it before the service): the
    // destructor's call must not touch it again.
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (reaper_.joinable()) reaper_.join();
  engine_.on_adopted(nullptr);
}

void session_service::counts(std::function<void(result<session_counts>)> done) {
  auto shared_done = std::make_shared<std::function<void(result<session_counts>)>>(std::move(done));
  // Metrics may show a commit whose flush is still running: nothing is answered from them that
  // a client could act on, so this read does not wait for durability.
  bool queued = engine_.read_with(
      [shared_done](storage::read_snapshot& ctx) {
        session_tables t(ctx.sql);
        auto states = t.sessions_by_state();
        if (!states) return (*shared_done)(std::move(states).error());
        auto statuses = t.commands_by_status();
        if (!statuses) return (*shared_done)(std::move(statuses).error());
        auto count_of = [](const auto& rows, const auto& wanted) -> std::int64_t {
          for (const auto& [key, n] : rows)
            if (key == wanted) return n;
          return 0;
        };
        session_counts out;
        for (session_state state : enum_values<session_state>())
          out.sessions_by_state.emplace_back(std::string(to_string(state)),
                                             count_of(*states, state));
        for (command_status status : enum_values<command_status>())
          out.commands_by_status.emplace_back(std::string(to_string(status)),
                                              count_of(*statuses, status));
        (*shared_done)(std::move(out));
      },
      [shared_done](const failure& f) { (*shared_done)(f); });
  if (!queued) {
    (*shared_done)(make_failure(failure_kind::unavailable, "read_queue_full",
                                "too many reads are waiting; retry shortly"));
  }
}

}  // namespace ordo::sessions
