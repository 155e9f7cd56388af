// /metrics: every ordo metric in the Prometheus text exposition format (0.0.4). The names
// follow Prometheus' conventions (ordo_ prefix, base units, _total for counters, _seconds and
// _bytes); docs/OPERATIONS.md explains each one and how to alert on them.
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "http/dashboard.hpp"
#include "http/server_metrics.hpp"
#include "http/session_api.hpp"
#include "http/stream_protocol.hpp"

#ifndef ORDO_VERSION
#define ORDO_VERSION "unknown"
#endif

namespace ordo::http {

namespace {

constexpr std::string_view k_status_classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx"};

// The standard process metrics, as Prometheus' own client libraries export them on Linux.
struct process_stats {
  double cpu_seconds = 0;
  double start_time_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
};

std::optional<process_stats> read_process_stats() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // The command name (field 2) is in parentheses and may hold spaces: fields count from after it.
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::vector<std::string> f;
  for (std::string field; fields >> field;)
    f.push_back(field);
  // f[0] is field 3 (state): utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
  if (f.size() < 22) return std::nullopt;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  process_stats p;
  p.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  p.virtual_bytes = std::stod(f[20]);
  p.resident_bytes = std::stod(f[21]) * page;
  std::ifstream boot("/proc/stat");
  for (std::string line; std::getline(boot, line);) {
    if (line.rfind("btime ", 0) == 0) {
      p.start_time_seconds = std::stod(line.substr(6)) + std::stod(f[19]) / ticks;
      break;
    }
  }
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    p.open_fds += 1;
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) p.max_fds = static_cast<double>(limit.rlim_cur);
  return p;
}

}  // namespace

std::string_view to_string(route_class r) {
  switch (r) {
    case route_class::streams:
      return "streams";
    case route_class::sessions:
      return "sessions";
    case route_class::changes:
      return "changes";
    case route_class::dashboard:
      return "dashboard";
    case route_class::health:
      return "health";
    case route_class::metrics:
      return "metrics";
    case route_class::other:
      return "other";
  }
  return "other";
}

route_class classify_route(std::string_view path) {
  if (path.rfind(k_stream_route_prefix, 0) == 0) return route_class::streams;
  if (path == "/v1/changes" || path.rfind("/v1/changes/", 0) == 0) return route_class::changes;
  if (is_session_api_path(path) || path.rfind("/v1/sessions/", 0) == 0)
    return route_class::sessions;
  if (path == "/health" || path == "/ready") return route_class::health;
  if (path == "/metrics") return route_class::metrics;
  if (is_dashboard_path(path) || path == k_streams_list_path) return route_class::dashboard;
  return route_class::other;
}

std::string render_metrics(const metrics_scrape& in) {
  metrics::exposition out;
  const stream_engine& engine = in.engine;
  const engine_metrics& em = engine.metrics();

  out.family("ordo_build_info", "gauge", "Always 1; the version label says which ordo runs.");
  out.sample("ordo_build_info", {{"version", ORDO_VERSION}}, 1);

  // ---- writes
  out.family("ordo_appends_total", "counter",
             "Client appends (POST with data) committed and acknowledged.");
  out.sample("ordo_appends_total", static_cast<double>(em.appends.value()));
  out.family("ordo_appended_messages_total", "counter",
             "Messages stored by any write: client appends, creates with data, session events "
             "and the change feed.");
  out.sample("ordo_appended_messages_total", static_cast<double>(em.appended_messages.value()));
  out.family("ordo_appended_bytes_total", "counter", "Payload bytes of those messages.");
  out.sample("ordo_appended_bytes_total", static_cast<double>(em.appended_bytes.value()));

  writer_stats ws = engine.stats();
  out.family("ordo_write_batches_total", "counter",
             "Write batches (one transaction and one flush each) committed.");
  out.sample("ordo_write_batches_total", static_cast<double>(ws.transactions_committed));
  out.family("ordo_write_batches_failed_total", "counter",
             "Write batches whose transaction failed as a whole (every job in them got the "
             "error).");
  out.sample("ordo_write_batches_failed_total", static_cast<double>(ws.transactions_failed));
  out.histogram("ordo_write_batch_jobs",
                "Jobs (appends, creates, session changes) per committed "
                "write batch.",
                em.batch_jobs.read());
  out.histogram("ordo_commit_duration_seconds",
                "How long each COMMIT of the writer took (batches, moves of the append log, "
                "maintenance).",
                em.commit_durations.read());
  out.histogram("ordo_fsync_duration_seconds",
                "How long each fdatasync of the write-ahead log took (--sync full in WAL mode; "
                "one covers every commit queued behind it).",
                engine.flush_durations().read());

  auto [queued_jobs, queued_bytes] = engine.write_queue_depth();
  out.family("ordo_write_queue_jobs", "gauge",
             "Jobs waiting for the writer (bounded by --max-write-queue-jobs).");
  out.sample("ordo_write_queue_jobs", static_cast<double>(queued_jobs));
  out.family("ordo_write_queue_bytes", "gauge",
             "Payload bytes waiting for the writer (bounded by --max-write-queue-bytes).");
  out.sample("ordo_write_queue_bytes", static_cast<double>(queued_bytes));

  out.family("ordo_storage_state", "gauge",
             "1 for the storage's current state: ok; busy (the last batch waited past "
             "--busy-timeout for another process's lock); full (the disk is full); unavailable "
             "(PostgreSQL: the writer has no connection); replaced "
             "(the database file was replaced, moved or deleted); poisoned (a commit of unknown "
             "outcome: writes are refused until restart).");
  const storage_state state = engine.current_storage_state();
  for (storage_state s : k_storage_states)
    out.sample("ordo_storage_state", {{"state", to_string(s)}}, s == state ? 1 : 0);

  out.family("ordo_background_worker", "gauge",
             "1 when this node does the background work (expiry, purges): always on SQLite; on "
             "PostgreSQL, the one node holding the cluster's worker lock.");
  out.sample("ordo_background_worker", engine.runs_background_work() ? 1 : 0);

  out.family("ordo_streams", "gauge", "Streams clients created (live and soft-deleted).");
  out.sample("ordo_streams", static_cast<double>(engine.stream_count()));
  out.family("ordo_tail_cache_bytes", "gauge",
             "Bytes the streams' tail caches hold for live readers (as of the last "
             "maintenance pass, twice a second; bounded by --tail-cache-total-bytes).");
  out.sample("ordo_tail_cache_bytes", static_cast<double>(engine.tail_cache_bytes()));

  // ---- connections and readers
  const server_metrics& sm = in.server;
  out.family("ordo_connections_open", "gauge",
             "Connections being served (bounded by --max-connections).");
  out.sample("ordo_connections_open", static_cast<double>(in.open_connections));
  out.family("ordo_sse_readers", "gauge", "SSE readers connected.");
  out.sample("ordo_sse_readers", static_cast<double>(sm.sse_readers.load()));
  out.family("ordo_long_poll_readers", "gauge", "Long-poll reads in progress.");
  out.sample("ordo_long_poll_readers", static_cast<double>(sm.long_poll_readers.load()));
  out.family("ordo_slow_readers_reset_total", "counter",
             "SSE readers cut off because their socket took no byte for --sse-write-timeout.");
  out.sample("ordo_slow_readers_reset_total", static_cast<double>(sm.slow_readers_reset.value()));

  out.family("ordo_catch_up_reads_active", "gauge",
             "Catch-up reads from disk admitted at once (bounded by --max-catch-up-reads).");
  out.sample("ordo_catch_up_reads_active", static_cast<double>(in.catch_up_active));
  out.family("ordo_catch_up_reads_waiting", "gauge", "Catch-up reads waiting in line.");
  out.sample("ordo_catch_up_reads_waiting", static_cast<double>(in.catch_up_waiting));
  out.family("ordo_catch_up_waits_total", "counter",
             "Catch-up reads that had to wait in line for a slot.");
  out.sample("ordo_catch_up_waits_total", static_cast<double>(sm.catch_up_waits.value()));
  out.family("ordo_catch_up_refusals_total", "counter",
             "Catch-up reads refused with 503 catch_up_busy after --catch-up-wait-timeout.");
  out.sample("ordo_catch_up_refusals_total", static_cast<double>(sm.catch_up_refusals.value()));

  // ---- authentication and the per-token caps (only with --auth other than none)
  if (in.auth) {
    out.family(
        "ordo_auth_verifications_total", "counter",
        "Bearer tokens verified (a JWT's signature, an API token's hash), not from the cache.");
    out.sample("ordo_auth_verifications_total", static_cast<double>(in.auth->verifications()));
    out.family("ordo_auth_cache_hits_total", "counter",
               "Requests whose token was verified before and taken from the cache.");
    out.sample("ordo_auth_cache_hits_total", static_cast<double>(in.auth->cache_hits()));
    out.family("ordo_auth_failures_total", "counter",
               "Requests refused with 401: no token, or one that does not verify.");
    out.sample("ordo_auth_failures_total", static_cast<double>(in.auth->failures()));
  }
  if (in.limits) {
    out.family(
        "ordo_token_limit_refusals_total", "counter",
        "Requests refused with 429 by a per-token cap: rate (--token-max-requests-per-second) "
        "or in_flight (--token-max-in-flight).");
    out.sample("ordo_token_limit_refusals_total", {{"cap", "rate"}},
               static_cast<double>(in.limits->rate_refusals.value()));
    out.sample("ordo_token_limit_refusals_total", {{"cap", "in_flight"}},
               static_cast<double>(in.limits->in_flight_refusals.value()));
  }

  // ---- sessions and the change feed
  if (in.sessions) {
    out.family("ordo_sessions", "gauge", "Sessions by lifecycle state.");
    for (const auto& [name, n] : in.sessions->sessions_by_state)
      out.sample("ordo_sessions", {{"state", name}}, static_cast<double>(n));
    out.family("ordo_commands", "gauge", "Commands by status.");
    for (const auto& [name, n] : in.sessions->commands_by_status)
      out.sample("ordo_commands", {{"status", name}}, static_cast<double>(n));
  }
  out.family("ordo_change_events_total", "counter",
             "Events appended to the change feed since the database was created.");
  out.family("ordo_change_events_pruned_total", "counter",
             "Change-feed events removed by retention (--changes-retention).");
  if (auto feed = engine.find(sessions::session_service::k_changes_stream_path)) {
    published_state st = feed->state();
    out.sample("ordo_change_events_total", static_cast<double>(st.tail.value()));
    out.sample("ordo_change_events_pruned_total", static_cast<double>(st.pruned_upto.value()));
  } else {
    out.sample("ordo_change_events_total", 0);
    out.sample("ordo_change_events_pruned_total", 0);
  }

  if (in.background) {
    out.family("ordo_background_job_failures_total", "counter",
               "Failed passes of the background jobs: the session reaper, creating the change "
               "feed, change-feed retention (each is also logged).");
    out.sample("ordo_background_job_failures_total", {{"job", "reaper"}},
               static_cast<double>(in.background->reaper_failures.value()));
    out.sample("ordo_background_job_failures_total", {{"job", "change_feed"}},
               static_cast<double>(in.background->change_feed_failures.value()));
    out.sample("ordo_background_job_failures_total", {{"job", "retention"}},
               static_cast<double>(in.background->retention_failures.value()));
  }

  // ---- HTTP
  out.family("ordo_http_responses_total", "counter",
             "HTTP responses by route class (streams, sessions, changes, dashboard, health, "
             "metrics, other) and status class.");
  for (std::size_t r = 0; r < k_route_classes; ++r) {
    for (std::size_t c = 0; c < 5; ++c) {
      std::uint64_t n = sm.responses[r][c].value();
      // Every route's 2xx, 4xx and 5xx are always listed, so rates and alerts see a 0 rather
      // than no series; 1xx and 3xx only once they happen.
      if (n == 0 && (c == 0 || c == 2)) continue;
      out.sample("ordo_http_responses_total",
                 {{"route", to_string(static_cast<route_class>(r))}, {"code", k_status_classes[c]}},
                 static_cast<double>(n));
    }
  }

  // ---- the process
  if (auto p = read_process_stats()) {
    out.family("process_cpu_seconds_total", "counter", "User and system CPU time spent.");
    out.sample("process_cpu_seconds_total", p->cpu_seconds);
    out.family("process_resident_memory_bytes", "gauge", "Resident memory size.");
    out.sample("process_resident_memory_bytes", p->resident_bytes);
    out.family("process_virtual_memory_bytes", "gauge", "Virtual memory size.");
    out.sample("process_virtual_memory_bytes", p->virtual_bytes);
    out.family("process_open_fds", "gauge", "Open file descriptors.");
    out.sample("process_open_fds", p->open_fds);
    out.family("process_max_fds", "gauge", "The limit of open file descriptors.");
    out.sample("process_max_fds", p->max_fds);
    out.family("process_start_time_seconds", "gauge",
               "When the process started, in seconds since the Unix epoch.");
    out.sample("process_start_time_seconds", p->start_time_seconds);
  }
  return out.take();
}

}  // namespace ordo::http
