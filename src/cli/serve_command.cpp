// `ordo serve` (cli/serve_command.hpp).
#include "cli/serve_command.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <unistd.h>

#include "auth/authenticator.hpp"
#include "base/duration.hpp"
#include "cli/config_file.hpp"
#include "http/server.hpp"
#include "sessions/session_service.hpp"
#include "storage/postgres/connection.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::cli {
namespace {

// CLI11 validator for durations such as 30s, 500ms, 2m.
struct duration_validator : CLI::Validator {
  duration_validator() {
    name_ = "DURATION";
    func_ = [](const std::string& text) {
      auto d = ordo::parse_duration(text);
      return d ? std::string() : d.error().message;
    };
  }
};

std::chrono::milliseconds duration_of(const std::string& text) {
  return *ordo::parse_duration(text);
}

struct serve_flags {
  std::string config_file;
  std::string host = "127.0.0.1";
  std::uint16_t port = 4437;
  std::string data_dir = "./data";
  std::string storage;  // a postgres:// URL; empty: SQLite in data_dir
  std::string sync = "full";
  std::string wal_flush = "writer";
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string long_poll_timeout = "30s";
  std::size_t max_body_bytes = 64 << 20;
  std::string sse_heartbeat = "15s";
  std::string sse_max_duration = "60s";
  std::string idle_timeout = "60s";
  std::string header_timeout = "20s";
  std::string body_timeout = "60s";
  std::string shutdown_timeout = "10s";
  std::size_t max_connections = 10'000;
  std::string sse_write_timeout = "30s";
  std::size_t max_catch_up_reads = 16;
  std::string catch_up_wait_timeout = "30s";
  std::size_t read_chunk_bytes = 1 << 20;
  std::size_t tail_cache_bytes = 256 << 10;
  std::size_t tail_cache_total_bytes = 256 << 20;
  std::size_t log_merge_rows = 8192;
  std::size_t log_merge_bytes = 8 << 20;
  std::size_t max_write_queue_bytes = 256 << 20;
  std::size_t max_write_queue_jobs = 100'000;
  int reader_threads = 2;
  std::string heartbeat_timeout = "30s";
  std::string detach_timeout = "5m";
  bool end_on_merge = true;
  std::string changes_retention = "7d";
  int ci_brake_commits = 3;
  std::string journal = "auto";
  std::string busy_timeout = "5s";
  std::string log_level = "info";
  std::string auth = "none";
  std::string auth_jwt_hs256_secret_file;
  std::string auth_jwt_keys;
  std::string auth_jwt_issuer;
  std::string auth_jwt_audience;
  std::string auth_tokens_file;
  bool allow_unauthenticated = false;
  std::size_t token_max_requests_per_second = 0;
  std::size_t token_max_in_flight = 1000;
  std::string cors_origins = "*";
  std::string tls_cert;
  std::string tls_key;
};

// The options of `ordo serve`, on `cmd`, writing into `f`. Also used for a scratch command that
// checks a whole config file (see main).
void add_serve_options(CLI::App& cmd, serve_flags& f) {
  duration_validator duration;
  cmd.add_option("--config", f.config_file,
                 "TOML file setting any of these options by name without the dashes "
                 "(port = 4437); a flag or variable wins over it")
      ->envname("ORDO_CONFIG")
      ->configurable(false)
      ->type_name("FILE");
  cmd.add_option("--host", f.host, "Address to listen on")
      ->envname("ORDO_HOST")
      ->capture_default_str();
  cmd.add_option("--port", f.port, "TCP port (0 picks a free one)")
      ->envname("ORDO_PORT")
      ->capture_default_str();
  cmd.add_option("--data-dir", f.data_dir, "Directory holding the database (ordo.db)")
      ->envname("ORDO_DATA_DIR")
      ->capture_default_str();
  cmd.add_option("--storage", f.storage,
                 "A PostgreSQL database (postgres://user:password@host:port/db) instead of "
                 "SQLite in --data-dir; several ordo nodes may share it")
      ->envname("ORDO_STORAGE")
      ->check([](const std::string& url) {
        return ordo::postgres::is_postgres_url(url)
                   ? std::string()
                   : "takes a postgres:// or postgresql:// URL, not '" +
                         ordo::postgres::redacted(url) + "'";
      });
  cmd.add_option("--sync", f.sync,
                 "full: fsync every commit before acknowledging writers; normal: survive a "
                 "crash of ordo but not of the machine")
      ->envname("ORDO_SYNC")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  cmd.add_option("--wal-flush", f.wal_flush,
                 "with --sync full: writer flushes the write-ahead log on the writer's thread "
                 "after each commit; thread pipelines it on a thread of its own, overlapping "
                 "the next commit (wins only with idle cores and fast transactions)")
      ->envname("ORDO_WAL_FLUSH")
      ->check(CLI::IsMember({"writer", "thread"}))
      ->capture_default_str();
  cmd.add_option("--threads", f.threads, "Network threads")
      ->envname("ORDO_THREADS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd.add_option("--long-poll-timeout", f.long_poll_timeout,
                 "How long a long-poll read waits for data before answering 204")
      ->envname("ORDO_LONG_POLL_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--max-body-bytes", f.max_body_bytes,
                 "Largest request body accepted; larger ones get 413")
      ->envname("ORDO_MAX_BODY_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 31))
      ->capture_default_str();
  cmd.add_option("--sse-heartbeat", f.sse_heartbeat,
                 "Interval of keep-alive comments on idle SSE connections")
      ->envname("ORDO_SSE_HEARTBEAT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--sse-max-duration", f.sse_max_duration,
                 "SSE connections are closed after this long; clients resume from their "
                 "last offset (lets caches collapse readers)")
      ->envname("ORDO_SSE_MAX_DURATION")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--idle-timeout", f.idle_timeout,
                 "Keep-alive connections with no request for this long are closed")
      ->envname("ORDO_IDLE_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--header-timeout", f.header_timeout,
                 "Once a request's first byte arrived, its headers must all arrive within this "
                 "long, or the connection is closed (slow clients)")
      ->envname("ORDO_HEADER_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--body-timeout", f.body_timeout,
                 "A request's body must arrive within this long after its headers, or the "
                 "connection is closed (slow clients)")
      ->envname("ORDO_BODY_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--shutdown-timeout", f.shutdown_timeout,
                 "On SIGTERM/SIGINT, how long open connections get to finish before they are "
                 "cut")
      ->envname("ORDO_SHUTDOWN_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--max-connections", f.max_connections,
                 "Connections served at once; beyond it new ones get 503 too_many_connections "
                 "(a small reserve still answers /health and /ready)")
      ->envname("ORDO_MAX_CONNECTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
      ->capture_default_str();
  cmd.add_option("--sse-write-timeout", f.sse_write_timeout,
                 "An SSE reader whose socket accepts no byte for this long is disconnected; it "
                 "resumes from the last control event it received")
      ->envname("ORDO_SSE_WRITE_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--max-catch-up-reads", f.max_catch_up_reads,
                 "Catch-up reads from disk in progress at once; more wait in line (live "
                 "readers served from memory never wait)")
      ->envname("ORDO_MAX_CATCH_UP_READS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  cmd.add_option("--catch-up-wait-timeout", f.catch_up_wait_timeout,
                 "How long a catch-up read waits in line before 503 catch_up_busy")
      ->envname("ORDO_CATCH_UP_WAIT_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--read-chunk-bytes", f.read_chunk_bytes,
                 "Most payload bytes in one catch-up response or SSE event")
      ->envname("ORDO_READ_CHUNK_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--tail-cache-bytes", f.tail_cache_bytes,
                 "Recent messages kept in memory per stream for live readers")
      ->envname("ORDO_TAIL_CACHE_BYTES")
      ->capture_default_str();
  cmd.add_option("--tail-cache-total-bytes", f.tail_cache_total_bytes,
                 "Recent messages kept in memory for all streams together; past it the caches of "
                 "the streams appended to least recently are emptied (checked twice a second)")
      ->envname("ORDO_TAIL_CACHE_TOTAL_BYTES")
      ->capture_default_str();
  cmd.add_option("--log-merge-rows", f.log_merge_rows,
                 "Appended messages the append log holds before they are moved into the "
                 "per-stream table")
      ->envname("ORDO_LOG_MERGE_ROWS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd.add_option("--log-merge-bytes", f.log_merge_bytes,
                 "Payload bytes the append log holds before they are moved into the "
                 "per-stream table")
      ->envname("ORDO_LOG_MERGE_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
      ->capture_default_str();
  cmd.add_option("--max-write-queue-bytes", f.max_write_queue_bytes,
                 "Payload bytes waiting for the writer before appends get 503")
      ->envname("ORDO_MAX_WRITE_QUEUE_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 40))
      ->capture_default_str();
  cmd.add_option("--max-write-queue-jobs", f.max_write_queue_jobs,
                 "Requests waiting for the writer before further writes get 503")
      ->envname("ORDO_MAX_WRITE_QUEUE_JOBS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}))
      ->capture_default_str();
  cmd.add_option("--reader-threads", f.reader_threads, "Threads serving catch-up reads")
      ->envname("ORDO_READER_THREADS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd.add_option("--heartbeat-timeout", f.heartbeat_timeout,
                 "A starting or active session without a heartbeat for this long becomes "
                 "detached (its execution is lost, its pending commands interrupted)")
      ->envname("ORDO_HEARTBEAT_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--detach-timeout", f.detach_timeout,
                 "A detached session without a heartbeat for this long ends (reason reaped)")
      ->envname("ORDO_DETACH_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--changes-retention", f.changes_retention,
                 "Change-feed events older than this are pruned; readers behind get 410")
      ->envname("ORDO_CHANGES_RETENTION")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--end-on-merge", f.end_on_merge,
                 "End a session (reason pr_merged) when a PR observation says its PR merged")
      ->envname("ORDO_END_ON_MERGE")
      ->capture_default_str();
  cmd.add_option("--ci-brake-commits", f.ci_brake_commits,
                 "The CI-fix-loop brake trips when one check failed on this many latest "
                 "distinct commits of a PR")
      ->envname("ORDO_CI_BRAKE_COMMITS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  cmd.add_option("--journal", f.journal,
                 "auto: write-ahead logging, or a rollback journal (with a warning) on network "
                 "filesystems and where WAL cannot work; wal: require WAL; delete: rollback "
                 "journal")
      ->envname("ORDO_JOURNAL")
      ->check(CLI::IsMember({"auto", "wal", "delete"}))
      ->capture_default_str();
  cmd.add_option("--busy-timeout", f.busy_timeout,
                 "How long a write waits for a lock another process holds on the database "
                 "(a sqlite3 shell, a backup tool) before answering 503 storage_busy")
      ->envname("ORDO_BUSY_TIMEOUT")
      ->check(duration)
      ->type_name("DURATION")
      ->capture_default_str();
  cmd.add_option("--auth", f.auth,
                 "How requests authenticate: none, jwt, tokens, or jwt,tokens "
                 "(docs/SECURITY.md); with none, only loopback addresses are served")
      ->envname("ORDO_AUTH")
      ->check([](const std::string& text) {
        auto mode = ordo::auth::parse_auth_mode(text);
        return mode ? std::string() : mode.error().message;
      })
      ->capture_default_str();
  cmd.add_option("--auth-jwt-hs256-secret-file", f.auth_jwt_hs256_secret_file,
                 "File holding the HS256 secret JWTs are signed with (32 bytes or more)")
      ->envname("ORDO_AUTH_JWT_HS256_SECRET_FILE");
  cmd.add_option("--auth-jwt-keys", f.auth_jwt_keys,
                 "File of public keys JWTs are verified with: PEM or JWKS (Ed25519, P-256, RSA)")
      ->envname("ORDO_AUTH_JWT_KEYS");
  cmd.add_option("--auth-jwt-issuer", f.auth_jwt_issuer, "The iss a JWT must carry (if set)")
      ->envname("ORDO_AUTH_JWT_ISSUER");
  cmd.add_option("--auth-jwt-audience", f.auth_jwt_audience, "The aud a JWT must carry (if set)")
      ->envname("ORDO_AUTH_JWT_AUDIENCE");
  cmd.add_option("--auth-tokens-file", f.auth_tokens_file,
                 "The API tokens file (`ordo token create` writes it; reloaded when it changes)")
      ->envname("ORDO_AUTH_TOKENS_FILE");
  cmd.add_flag("--allow-unauthenticated", f.allow_unauthenticated,
               "Serve a non-loopback address with --auth none (only behind something that "
               "authenticates)")
      ->envname("ORDO_ALLOW_UNAUTHENTICATED");
  cmd.add_option("--cors-origins", f.cors_origins,
                 "Web origins whose pages may read answers: * (any, without credentials) or a "
                 "comma-separated list (each with credentials)")
      ->envname("ORDO_CORS_ORIGINS")
      ->capture_default_str();
  cmd.add_option("--token-max-requests-per-second", f.token_max_requests_per_second,
                 "Requests one token may send per second (bursts of twice that); more get 429 "
                 "(0: no cap; with authentication only)")
      ->envname("ORDO_TOKEN_MAX_REQUESTS_PER_SECOND")
      ->capture_default_str();
  cmd.add_option("--token-max-in-flight", f.token_max_in_flight,
                 "Requests of one token served at once, live reads included; more get 429 "
                 "(0: no cap; with authentication only)")
      ->envname("ORDO_TOKEN_MAX_IN_FLIGHT")
      ->capture_default_str();
  cmd.add_option("--tls-cert", f.tls_cert,
                 "Serve HTTPS with this certificate (PEM; the server's certificate first, then "
                 "any intermediates); needs --tls-key. SIGHUP loads both files again")
      ->envname("ORDO_TLS_CERT")
      ->type_name("FILE");
  cmd.add_option("--tls-key", f.tls_key, "The private key of --tls-cert (PEM, unencrypted)")
      ->envname("ORDO_TLS_KEY")
      ->type_name("FILE");
  cmd.add_option("--log-level", f.log_level, "How much to log")
      ->envname("ORDO_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
      ->capture_default_str();
}

ordo::http::server* g_server = nullptr;

int serve(const serve_flags& f) {
  auto level = spdlog::level::from_str(f.log_level);
  spdlog::set_level(level);

  std::error_code ec;
  std::filesystem::create_directories(f.data_dir, ec);
  if (ec) {
    spdlog::critical("cannot create --data-dir '{}': {}", f.data_dir, ec.message());
    return 1;
  }
  ordo::stream_engine_options eo;
  eo.database.path = (std::filesystem::path(f.data_dir) / "ordo.db").string();
  eo.database.sync =
      f.sync == "normal" ? ordo::sqlite::sync_mode::normal : ordo::sqlite::sync_mode::full;
  eo.wal_flush =
      f.wal_flush == "thread" ? ordo::sqlite::wal_flush::thread : ordo::sqlite::wal_flush::writer;
  eo.database.journal = f.journal == "wal"      ? ordo::sqlite::journal_mode::wal
                        : f.journal == "delete" ? ordo::sqlite::journal_mode::rollback
                                                : ordo::sqlite::journal_mode::automatic;
  eo.database.busy_timeout = duration_of(f.busy_timeout);
  eo.postgres_url = f.storage;
  eo.postgres_synchronous_commit = f.sync == "full";
  eo.reader_threads = f.reader_threads;
  eo.read_chunk_bytes = f.read_chunk_bytes;
  eo.tail_cache_bytes = f.tail_cache_bytes;
  eo.tail_cache_total_bytes = f.tail_cache_total_bytes;
  eo.log_merge_rows = f.log_merge_rows;
  eo.log_merge_bytes = f.log_merge_bytes;
  eo.max_write_queue_bytes = f.max_write_queue_bytes;
  eo.max_write_queue_jobs = f.max_write_queue_jobs;
  auto engine = ordo::stream_engine::open(eo);
  if (!engine) {
    spdlog::critical("cannot open storage: {}", engine.error().message);
    return 1;
  }

  ordo::sessions::session_service_options sessions_options;
  sessions_options.heartbeat_timeout = duration_of(f.heartbeat_timeout);
  sessions_options.detach_timeout = duration_of(f.detach_timeout);
  sessions_options.end_on_merge = f.end_on_merge;
  sessions_options.changes_retention = duration_of(f.changes_retention);
  sessions_options.ci_brake_commits = f.ci_brake_commits;
  auto sessions = std::make_unique<ordo::sessions::session_service>(**engine, sessions_options);
  // Stale sessions from before a restart are detached or ended before anything is served.
  sessions->start();

  ordo::http::server_options so;
  so.host = f.host;
  so.port = f.port;
  so.threads = f.threads;
  so.max_body_bytes = f.max_body_bytes;
  so.long_poll_timeout = duration_of(f.long_poll_timeout);
  so.sse_heartbeat_interval = duration_of(f.sse_heartbeat);
  so.sse_max_duration = duration_of(f.sse_max_duration);
  so.idle_timeout = duration_of(f.idle_timeout);
  so.header_timeout = duration_of(f.header_timeout);
  so.body_timeout = duration_of(f.body_timeout);
  so.shutdown_timeout = duration_of(f.shutdown_timeout);
  so.max_connections = f.max_connections;
  so.sse_write_timeout = duration_of(f.sse_write_timeout);
  so.max_catch_up_reads = f.max_catch_up_reads;
  so.catch_up_wait_timeout = duration_of(f.catch_up_wait_timeout);
  auto auth_options = ordo::auth::parse_auth_mode(f.auth);
  auth_options->jwt_keys.hs256_secret_file = f.auth_jwt_hs256_secret_file;
  auth_options->jwt_keys.keys_file = f.auth_jwt_keys;
  if (!f.auth_jwt_issuer.empty()) auth_options->jwt_keys.issuer = f.auth_jwt_issuer;
  if (!f.auth_jwt_audience.empty()) auth_options->jwt_keys.audience = f.auth_jwt_audience;
  auth_options->tokens_file = f.auth_tokens_file;
  auto authenticator = ordo::auth::authenticator::open(*auth_options);
  if (!authenticator) {
    spdlog::critical("authentication: {}", authenticator.error().message);
    return 1;
  }
  so.auth = std::move(*authenticator);
  so.allow_unauthenticated = f.allow_unauthenticated;
  so.token_limits.requests_per_second = static_cast<double>(f.token_max_requests_per_second);
  so.token_limits.burst = 2.0 * static_cast<double>(f.token_max_requests_per_second);
  so.token_limits.max_in_flight = f.token_max_in_flight;
  so.cors_origins = f.cors_origins;
  if (f.tls_cert.empty() != f.tls_key.empty()) {
    spdlog::critical("--tls-cert and --tls-key go together: {} given without {}",
                     f.tls_cert.empty() ? "--tls-key" : "--tls-cert",
                     f.tls_cert.empty() ? "--tls-cert" : "--tls-key");
    return 1;
  }
  if (!f.tls_cert.empty()) so.tls = ordo::http::tls_files{f.tls_cert, f.tls_key};
  auto server = ordo::http::server::bind(so, **engine, *sessions);
  if (!server) {
    spdlog::critical("{}", server.error().message);
    return 1;
  }
  g_server = server->get();
  // The first signal only sets a flag; a watcher thread turns it into a graceful stop. A second
  // one exits at once with 128 + its number (130 for SIGINT, 143 for SIGTERM), skipping the
  // rest of the shutdown: what was acknowledged is on disk, the next start recovers the WAL.
  static std::atomic<int> signal_received{0};
  static std::atomic<int> signals_seen{0};
  // SIGHUP: load the TLS certificate and key again, for connections accepted afterwards.
  static std::atomic<bool> reload_requested{false};
  static_assert(std::atomic<int>::is_always_lock_free);
  static_assert(std::atomic<bool>::is_always_lock_free);
  auto on_signal = [](int s) {
    if (signals_seen.fetch_add(1) > 0) {
      constexpr char k_message[] = "ordo: second signal; exiting at once\n";
      [[maybe_unused]] auto n = ::write(STDERR_FILENO, k_message, sizeof k_message - 1);
      ::_exit(128 + s);
    }
    signal_received = s;
  };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);
  std::signal(SIGHUP, [](int) { reload_requested = true; });
  std::atomic<bool> done{false};
  std::thread watcher([&] {
    while (!done) {
      if (int s = signal_received.exchange(0)) {
        spdlog::info("received signal {}; shutting down (a second signal exits at once)", s);
        g_server->stop();
        return;
      }
      if (reload_requested.exchange(false)) {
        if (!g_server->tls()) {
          spdlog::info("SIGHUP: no TLS to reload (--tls-cert is not set); nothing to do");
        } else if (auto reloaded = g_server->reload_tls(); reloaded) {
          spdlog::info(
              "SIGHUP: reloaded the TLS certificate '{}' and key '{}'; new connections "
              "use them, open ones keep theirs",
              f.tls_cert, f.tls_key);
        } else {
          spdlog::error("SIGHUP: TLS reload failed, still serving the previous certificate: {}",
                        reloaded.error().message);
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  const std::string storage = f.storage.empty() ? "data_dir=" + f.data_dir
                                                : "storage=" + ordo::postgres::redacted(f.storage);
  spdlog::info("listening address={} port={} {} sync={} threads={} tls={} auth={}", f.host,
               (*server)->port(), storage, f.sync, f.threads,
               (*server)->tls() ? "on cert=" + f.tls_cert : std::string("off"),
               so.auth->mode_name());
  (*server)->run();
  done = true;
  watcher.join();
  // The engine goes first: its stream records hold wake-ups bound to the server's executors,
  // which must not outlive the server's io_context.
  sessions->stop();
  (*engine)->stop();
  engine->reset();
  server->reset();
  spdlog::info("stopped");
  return 0;
}

}  // namespace

struct serve_command {
  CLI::App* command = nullptr;
  serve_flags flags;
};

std::shared_ptr<serve_command> add_serve_command(CLI::App& app) {
  auto c = std::make_shared<serve_command>();
  c->command = app.add_subcommand("serve", "Serve the HTTP API (Durable Streams protocol)");
  add_serve_options(*c->command, c->flags);
  return c;
}

void apply_serve_config(serve_command& c) {
  if (!c.command->parsed() || c.flags.config_file.empty()) return;
  // The file is read twice: first into a scratch command with the same options, none of them
  // set, so that every key and value is checked, also one a flag or variable overrides (CLI11
  // skips those); then into serve's options, filling only what the command line and the
  // environment left empty.
  CLI::App scratch_cmd;
  serve_flags scratch;
  add_serve_options(scratch_cmd, scratch);
  apply_config_file(scratch_cmd, c.flags.config_file);
  apply_config_file(*c.command, c.flags.config_file);
}

std::optional<int> run(serve_command& c) {
  if (!c.command->parsed()) return std::nullopt;
  return serve(c.flags);
}

}  // namespace ordo::cli
