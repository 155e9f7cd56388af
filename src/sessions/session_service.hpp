// Agent sessions: projects, sessions with a lifecycle, executions, duplicate-safe commands, the
// ordered transcript (rows), each session's event stream, snapshots and the reaper.
//
// Every mutation is one job of the stream engine's group-commit writer: it reads and writes the
// session tables and appends its typed events to the session's managed event stream inside the
// same savepoint, so state and events commit together or not at all, and every sequence (row,
// command, generation, event offset) is assigned there and nowhere else. Reads run on reader
// threads; a snapshot reads everything, including the event stream's tail, in one transaction.
//
// Thread safety: every public function may be called from any thread; callbacks run on the
// writer thread or a reader thread and must only hand the reply to the caller's executor.
//
// The members are defined in the file of their entity (projects.cpp, sessions.cpp,
// executions.cpp, commands.cpp, transcript_rows.cpp, pull_requests.cpp, change_feed.cpp,
// reaper.cpp); what those share, mutate_session() among it, is in session_jobs.hpp.
#pragma once

#include <boost/json/value.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/metrics.hpp"
#include "base/result.hpp"
#include "base/thread_annotations.hpp"
#include "storage/sqlite/managed_streams.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::sessions {

struct session_service_options {
  // A session in starting/active without a heartbeat for this long becomes detached.
  std::chrono::milliseconds heartbeat_timeout{30'000};
  // A detached session without a heartbeat for this long ends with reason `reaped`.
  std::chrono::milliseconds detach_timeout{300'000};
  // An observation that a session's PR was merged ends the session (reason pr_merged).
  bool end_on_merge = true;
  // The CI-fix-loop brake trips when one check failed on this many latest distinct commits.
  int ci_brake_commits = 3;
  // Change-feed events older than this are pruned by the janitor.
  std::chrono::milliseconds changes_retention{7LL * 24 * 3600 * 1000};
};

// Feed events pruned per janitor transaction: small enough never to stall writers.
inline constexpr std::size_t k_prune_batch = 1000;

// Named limits of the session API.
inline constexpr int k_default_row_page = 100;
inline constexpr int k_max_row_page = 500;
inline constexpr int k_default_session_page = 50;
inline constexpr int k_max_session_page = 200;
inline constexpr int k_default_snapshot_rows = 50;
inline constexpr std::size_t k_max_text_field_bytes = 4096;
inline constexpr std::size_t k_max_tags = 64;
inline constexpr std::size_t k_max_tag_bytes = 64;
inline constexpr std::size_t k_max_id_bytes = 128;

enum class reply_kind { ok, created, accepted };

struct reply {
  reply_kind kind = reply_kind::ok;
  boost::json::value body;
  std::optional<std::int64_t> revision;  // the session's revision after the call (ETag)
  bool replayed = false;                 // an idempotent retry answered from what was stored
};

using reply_callback = std::function<void(result<reply>)>;

// What a caller may see: whether a project's resources, or one session of it, are visible (the
// HTTP layer builds it from the request's token). Lists and snapshots leave out what it refuses
// before paging, so no count, cursor or gap tells that anything was left out. Empty: all.
using visibility = std::function<bool(std::string_view project_id, std::string_view session_id)>;

struct session_list_query {
  std::optional<std::string> project_id;
  std::optional<std::string> state;
  std::optional<std::string> client_state;
  std::optional<std::string> cursor;
  std::optional<int> limit;
  bool require_project = false;  // listed under /v1/projects/{id}: an unknown project is a 404
  visibility visible;
};

struct row_list_query {
  std::optional<std::int64_t> after;
  std::optional<std::int64_t> before;
  std::optional<int> limit;
};

// How many sessions are in each state and commands in each status, for /metrics: every state
// and status is listed, with 0 where there is none.
struct session_counts {
  std::vector<std::pair<std::string, std::int64_t>> sessions_by_state;
  std::vector<std::pair<std::string, std::int64_t>> commands_by_status;
};

// Failed passes of the background jobs, for /metrics (each is also logged).
struct background_metrics {
  metrics::counter reaper_failures;
  metrics::counter change_feed_failures;  // creating the change feed
  metrics::counter retention_failures;    // pruning the change feed
};

class session_service {
 public:
  // Precondition: the engine's managed_stream_prefix covers sqlite::k_managed_namespace, so no
  // client can write the sessions' streams (a violation logs and aborts).
  session_service(stream_engine& engine, session_service_options options);
  ~session_service();

  // Applies the reaper's rules to whatever is stale, then keeps doing so periodically.
  void start();
  void stop();

  // The managed stream holding a session's events.
  static std::string events_stream_path(std::string_view session_id);
  // The managed stream of the change feed: one event per committed change of any entity.
  static constexpr std::string_view k_changes_stream_path = sqlite::k_change_feed_path;

  // ---- projects
  // `may_create`, when set, must accept the new project's id (given, or derived from its name)
  // or the call fails with 403 insufficient_scope.
  void create_project(boost::json::value body, visibility may_create, reply_callback done);
  void list_projects(bool include_archived, visibility visible, reply_callback done);
  void get_project(std::string id, reply_callback done);
  void archive_project(std::string id, reply_callback done);

  // ---- sessions
  void create_session(std::string project_id, boost::json::value body, reply_callback done);
  void list_sessions(session_list_query query, reply_callback done);
  void get_session(std::string id, reply_callback done);
  // The project a session belongs to (nullopt: no such session), for access checks. A
  // session's project never changes.
  void session_project(std::string id,
                       std::function<void(result<std::optional<std::string>>)> done);
  void update_session(std::string id, std::optional<std::int64_t> if_match, boost::json::value body,
                      reply_callback done);
  void transition(std::string id, std::optional<std::int64_t> if_match, boost::json::value body,
                  reply_callback done);
  void end(std::string id, std::optional<std::int64_t> if_match, boost::json::value body,
           reply_callback done);
  void heartbeat(std::string id, reply_callback done);
  void snapshot(std::string id, std::optional<int> row_limit, reply_callback done);

  // ---- the change feed
  // Every live project and session, and the feed offset they are consistent at. With `project`,
  // that project's entities only and the offset of its own feed (which must exist:
  // ensure_project_feed()).
  void changes_snapshot(visibility visible, std::optional<std::string> project,
                        reply_callback done);
  // Creates the project's own feed if it does not exist yet (a project of a database written
  // before project feeds existed gets it on first read). 404 project_not_found if there is no
  // such project, archived or not.
  void ensure_project_feed(std::string project, std::function<void(status)> done);
  // Counts sessions by state and commands by status on a reader thread (two GROUP BY scans).
  void counts(std::function<void(result<session_counts>)> done);
  const background_metrics& background() const { return background_; }

  // ---- pull requests
  // Records what an SCM poller saw of one PR (facts, checks, the comment set) in one
  // transaction.
  void observe_pr(std::string id, std::optional<std::int64_t> if_match, boost::json::value body,
                  reply_callback done);
  void list_prs(std::string id, reply_callback done);
  // Whether the same check failed on the last `commits` distinct commits of a PR, with evidence.
  void ci_brake(std::string id, std::optional<int> commits, reply_callback done);

  // ---- executions
  void start_execution(std::string id, std::optional<std::int64_t> if_match, reply_callback done);
  void finish_execution(std::string id, std::int64_t generation, bool abort,
                        std::optional<std::int64_t> if_match, boost::json::value body,
                        reply_callback done);
  void list_executions(std::string id, reply_callback done);

  // ---- commands
  void send_command(std::string id, std::optional<std::int64_t> if_match,
                    std::string idempotency_key, boost::json::value body, reply_callback done);
  void update_command(std::string id, std::string command_id, std::optional<std::int64_t> if_match,
                      boost::json::value body, reply_callback done);
  void get_command(std::string id, std::string command_id, reply_callback done);
  void list_commands(std::string id, std::optional<std::string> status_filter,
                     std::optional<std::int64_t> after, std::optional<int> limit,
                     reply_callback done);

  // ---- rows
  void append_row(std::string id, std::optional<std::int64_t> if_match,
                  std::optional<std::string> idempotency_key, boost::json::value body,
                  reply_callback done);
  void upsert_row(std::string id, std::string row_id, std::optional<std::int64_t> if_match,
                  boost::json::value body, reply_callback done);
  void get_row(std::string id, std::string row_id, reply_callback done);
  void list_rows(std::string id, row_list_query query, reply_callback done);

 private:
  // Creates the change feed's stream if the database has none; waits for it.
  void ensure_change_feed();
  // Queues that job; `then` runs on the writer thread once it is done. false: queue full.
  bool submit_change_feed_job(std::function<void()> then);
  void reap_once();
  // Prunes one batch of change-feed events older than the retention; true if more may remain.
  bool prune_changes_once();
  // A pass over the projects' feeds stopped at its batch limit: the next pass goes on with them.
  // Used by retention jobs only, on the writer thread.
  bool project_feeds_behind_ = false;
  void reaper_loop();

  stream_engine& engine_;
  session_service_options options_;
  background_metrics background_;
  mutex mu_;
  std::condition_variable cv_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

}  // namespace ordo::sessions
