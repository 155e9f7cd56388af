// The HTTP server: a Beast listener and one coroutine per connection, routing to the Durable
// Streams handlers, the session API, the dashboard, /health, /ready and /metrics. Beast stays
// inside http/'s server files (server_impl.hpp names them); this header is plain.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "auth/authenticator.hpp"
#include "base/result.hpp"
#include "http/tls_context.hpp"
#include "http/token_limits.hpp"
#include "sessions/session_service.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::http {

struct server_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 4437;  // 0: pick a free port
  int threads = 2;
  std::size_t max_body_bytes = 64 << 20;
  std::size_t max_header_bytes = 64 << 10;
  std::chrono::milliseconds long_poll_timeout{30'000};
  std::chrono::milliseconds sse_heartbeat_interval{15'000};
  std::chrono::milliseconds sse_max_duration{60'000};  // connections are recycled (section 10.2)
  std::chrono::milliseconds idle_timeout{60'000};      // keep-alive connection with no request
  // Slow clients: once a request's first byte arrived, its whole head must arrive within
  // header_timeout (however the bytes dribble in), and then its whole body within body_timeout;
  // past either the connection is closed without an answer.
  std::chrono::milliseconds header_timeout{20'000};
  std::chrono::milliseconds body_timeout{60'000};
  // How long stop() lets open connections finish before cutting them.
  std::chrono::milliseconds shutdown_timeout{10'000};

  // Delivery under stress (DESIGN.md, "Delivery"; seed 000's replay storms).
  // Connections served at once. Beyond it a small reserve of connections is read just far
  // enough to answer /health and /ready, and every other request gets 503
  // too_many_connections with Retry-After; past the reserve they are closed at once.
  std::size_t max_connections = 10'000;
  // An SSE reader whose socket accepts no byte for this long is cut off. It has at most one
  // event (one catch-up chunk, or one commit) outstanding, so its memory stays bounded while it
  // waits; it resumes from the last control event it received.
  std::chrono::milliseconds sse_write_timeout{30'000};
  // Catch-up reads that need the database (they miss the tail cache), queued for or running on
  // the reader threads at once. The rest wait in line, at most catch_up_wait_timeout, then get
  // 503 catch_up_busy. Live readers served from the tail cache never wait here.
  std::size_t max_catch_up_reads = 16;
  std::chrono::milliseconds catch_up_wait_timeout{30'000};

  // Authentication (docs/SECURITY.md). Null or disabled: every request acts as admin, and then
  // bind() refuses an address other than loopback unless allow_unauthenticated is set.
  std::shared_ptr<auth::authenticator> auth;
  bool allow_unauthenticated = false;
  // Which web origins may read answers (http/cors.hpp): "*" or a comma-separated list.
  std::string cors_origins = "*";
  // Per-token caps (http/token_limits.hpp), with authentication only.
  token_limit_options token_limits;
  // HTTPS with this certificate and key (--tls-cert, --tls-key); plain HTTP without. The TLS
  // handshake must end within idle_timeout, like the wait for a request's headers.
  std::optional<tls_files> tls;
};

class server {
 public:
  // Binds the listening socket and loads options.tls (its failures name the file); the server
  // does not serve until run().
  static result<std::unique_ptr<server>> bind(server_options options, stream_engine& engine,
                                              sessions::session_service& sessions);
  ~server();

  // The bound port (useful with port 0).
  std::uint16_t port() const;
  // Whether it serves HTTPS (options.tls).
  bool tls() const;
  // Loads options.tls's certificate and key again (SIGHUP): connections accepted from now on
  // use them, open ones keep the ones they began with. On failure the server keeps serving the
  // certificate it had, and the failure names the file. Any thread; nothing to do without TLS.
  status reload_tls();
  // Serves on options.threads threads until stop(); returns when all threads have finished.
  void run();
  // Serves a socket that is already connected (its file descriptor; the server owns it from
  // here on) as if the listener had accepted it: the same request loop and limits, on the next
  // network thread. Any thread. The in-process harness of fuzz/dispatch.cpp serves one end of a
  // socketpair this way, with no network in between.
  void serve_connected(int native_socket);
  // A graceful stop, returning at once; run() returns when it is over. Stops accepting, closes
  // idle keep-alive connections, answers waiting long-polls (204, as at their timeout), sends
  // each SSE reader a last control event at its next offset and ends it, and lets requests in
  // flight (appends waiting for the writer) be answered, each answer the connection's last.
  // Connections still open after options.shutdown_timeout are cut (a warning says how many).
  // Safe from any thread and from signal handlers' deferred work (not from a signal handler
  // itself); later calls do nothing.
  void stop();

  // The server's state, defined in http/server_impl.hpp for the files that implement the server
  // (named here so that their helper functions may take it; nothing else can use it).
  struct impl;

 private:
  explicit server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

}  // namespace ordo::http
