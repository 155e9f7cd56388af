// The reaper (sessions without heartbeats are detached, then ended) and the change feed's
// retention (events older than it pruned in bounded batches), run periodically on their own
// thread, each pass one job of the writer.
#include "sessions/session_service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <future>
#include <memory>

#include "base/rfc3339.hpp"
#include "sessions/api_json.hpp"
#include "sessions/lifecycle.hpp"
#include "sessions/session_jobs.hpp"

namespace ordo::sessions {

void session_service::reap_once() {
  auto heartbeat_timeout = options_.heartbeat_timeout.count();
  auto detach_timeout = options_.detach_timeout.count();
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  write_job job;
  job.streams = {std::string(k_changes_stream_path)};
  job.run = [heartbeat_timeout, detach_timeout](write_context& ctx) -> status {
    session_tables t(ctx.sql());
    // Detach sessions whose agent stopped heartbeating; end those detached for too long. Every
    // change goes through the lifecycle functions, like an API call.
    std::vector<session_state> watched;
    for (session_state state : enum_values<session_state>()) {
      if (expects_heartbeat(state)) watched.push_back(state);
    }
    auto lost = t.sessions_with_heartbeat_before(watched, ctx.now_ms() - heartbeat_timeout);
    if (!lost) return std::move(lost).error();
    for (const auto& id : *lost) {
      auto s = existing_session(t, id);
      if (!s) return std::move(s).error();
      std::vector<event> events;
      if (auto st = apply_transition(ctx, t, *s, session_state::detached, "heartbeat_lost", events);
          !st) {
        return st;
      }
      if (auto st = commit_session_change(ctx, t, *s, events); !st) return st;
      spdlog::info("session detached id={} cause=heartbeat_lost", id);
    }
    // Looked up after detaching: a session silent for longer than both timeouts (e.g. while
    // ordo was down) is detached and ended in the same pass.
    auto abandoned =
        t.sessions_with_heartbeat_before({session_state::detached}, ctx.now_ms() - detach_timeout);
    if (!abandoned) return std::move(abandoned).error();
    for (const auto& id : *abandoned) {
      auto s = existing_session(t, id);
      if (!s) return std::move(s).error();
      std::vector<event> events;
      if (auto st = apply_end(ctx, t, *s, end_reason::reaped, "detach_timeout", events); !st) {
        return st;
      }
      if (auto st = commit_session_change(ctx, t, *s, events); !st) return st;
      spdlog::info("session ended id={} reason=reaped", id);
    }
    return ok_v;
  };
  job.done = [this, finished](const std::optional<failure>& f) {
    if (f) {
      background_.reaper_failures.add();
      spdlog::warn("reaper pass failed: {}", f->message);
    }
    finished->set_value();
  };
  if (engine_.submit(std::move(job))) future.wait();
}

namespace {

struct pruned {
  bool some = false;  // something was removed
  bool full = false;  // a whole batch was removed: there may be more
};

// Removes the changes older than `cutoff` from the feed at `path`, at most k_prune_batch of them.
result<pruned> prune_feed(write_context& ctx, std::string_view path, std::int64_t cutoff) {
  auto feed = ctx.find_stream(path);
  if (!feed) return std::move(feed).error();
  if (!*feed) return pruned{};
  auto oldest = ctx.oldest_messages(**feed, k_prune_batch);
  if (!oldest) return std::move(oldest).error();
  std::optional<stream_position> upto;
  for (const auto& m : *oldest) {
    boost::system::error_code ec;
    json::value v = json::parse(m.data, ec);
    if (ec || !v.is_object() || !v.as_object().contains("at")) break;
    auto at = parse_rfc3339_ms(json::value_to<std::string>(v.as_object().at("at")));
    if (!at || *at >= cutoff) break;
    upto = m.seq;
  }
  if (!upto) return pruned{};
  if (auto s = ctx.prune(**feed, *upto); !s) return std::move(s).error();
  return pruned{true, (*upto - oldest->front().seq) + 1 == k_prune_batch};
}

}  // namespace

bool session_service::prune_changes_once() {
  auto more = std::make_shared<std::atomic<bool>>(false);
  auto finished = std::make_shared<std::promise<void>>();
  auto future = finished->get_future();
  write_job job;
  job.streams = {std::string(k_changes_stream_path)};
  // The server's feed, then every project's own (archived ones too: their feeds age out alike).
  // Every change is in both, at the same time: the projects' feeds hold something old only when
  // the server's feed did (or a project's pass stopped at its batch limit), so the pass over
  // every project runs only then, not on every tick of the reaper.
  job.run = [this, retention = options_.changes_retention.count(),
             more](write_context& ctx) -> status {
    std::int64_t cutoff = ctx.now_ms() - retention;
    auto server_feed = prune_feed(ctx, k_changes_stream_path, cutoff);
    if (!server_feed) return std::move(server_feed).error();
    bool any_full = server_feed->full;
    if (server_feed->some || project_feeds_behind_) {
      session_tables t(ctx.sql());
      auto projects = t.projects(true);
      if (!projects) return std::move(projects).error();
      bool behind = false;
      for (const auto& p : *projects) {
        auto project_feed = prune_feed(ctx, sqlite::project_changes_path(p.id), cutoff);
        if (!project_feed) return std::move(project_feed).error();
        behind = behind || project_feed->full;
      }
      project_feeds_behind_ = behind;
      any_full = any_full || behind;
    }
    more->store(any_full);
    return ok_v;
  };
  job.done = [this, finished](const std::optional<failure>& f) {
    if (f) {
      background_.retention_failures.add();
      spdlog::warn("change-feed retention pass failed: {}", f->message);
    }
    finished->set_value();
  };
  if (!engine_.submit(std::move(job))) return false;
  future.wait();
  return more->load();
}

void session_service::reaper_loop() {
  // Often enough that a session is detached within a quarter of its timeout after it is due.
  auto interval = std::clamp(std::min(options_.heartbeat_timeout, options_.detach_timeout) / 4,
                             std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
  mutex_lock lock(mu_);
  while (!lock.wait_for(cv_, interval, [&]() REQUIRES(mu_) { return stopping_; })) {
    lock.unlock();
    // Where nodes share the storage, one of them reaps and prunes (the background worker).
    if (!engine_.runs_background_work()) {
      lock.lock();
      continue;
    }
    reap_once();
    // A few retention batches per tick at most: the rest waits for the next tick.
    for (int i = 0; i < 4 && prune_changes_once(); ++i) {
    }
    lock.lock();
  }
}

}  // namespace ordo::sessions
