// The HTTP server: server's public API (bind, run, stop), the accept loop and its refusals over
// --max-connections, each connection's request loop (session()) and the shutdown (drain()).
//
// One coroutine per connection, on the io_context of the network thread it was given at accept
// (each thread runs its own io_context, so a connection's handlers run in order without a
// strand and the threads share no scheduler lock): read a request with a header limit, a body limit
// and a timeout; route it; write the answer; repeat while keep-alive. Expected failures (EOF,
// timeouts, resets) end only that connection. Long-polls wait on the stream record's one-shot
// waiters with a timer on the connection's thread; the wake-up posts a timer cancel to that thread.
// Caught-up SSE readers park instead: the task that wakes the stream's readers writes to their
// sockets itself (live_readers.cpp, "parked SSE readers").
//
// HTTPS (options.tls): a connection accepted with the server's current TLS context (replaced by
// reload_tls() on SIGHUP; each connection keeps the one it began with) handshakes within
// idle_timeout, then runs the same request loop, serve_requests(), instantiated for its SSL
// stream (tls_stream.hpp) instead of its tcp_stream; answers go out through write_response(),
// which picks the stream. Plain connections pay for TLS with one pointer test per answer.
//
// Shutdown (stop()) is polite cancel, a deadline, then forced cancel: the acceptor closes; each
// open connection gets, on its thread, its idle header read cancelled or its live wait woken;
// long-polls then answer 204 and SSE readers get a last control event; requests in flight are
// answered with Connection: close. Whatever is still open at options.shutdown_timeout is cut.
//
// Delivery under stress (seed 000: replay storms after a restart, queues that grew past their
// cap). Every limit is an option in server_options:
//   - connections: past max_connections a connection is answered 503 too_many_connections and
//     closed, never left waiting in the backlog; a small reserve of such connections is read far
//     enough to answer /health and /ready, so probes work while the server is full;
//   - catch-up reads: those the tail cache cannot serve pass catch_up_admission (at most
//     max_catch_up_reads on the reader pool at once; the rest wait in line, bounded in time),
//     so a reconnect storm queues cheaply on its connections' threads while live readers, served
//     from memory, go on;
//   - SSE writes: pull, not push. An SSE connection reads its next chunk only once the socket
//     took the previous one, so it holds at most one event (one chunk, or one commit shared with
//     every other reader) and a slow reader only lags. One whose socket accepts no byte for
//     sse_write_timeout is reset and its memory freed; each data event goes out in one write with
//     its control event, so the last control event the client received whole is its resume
//     offset.
//
// Four files include Beast, kept few because each takes long to compile: this one, router.cpp
// (the route table: which handler answers a request), stream_handlers.cpp (PUT, POST, DELETE,
// HEAD and GET of a stream) and live_readers.cpp (long-poll waits, SSE and its parked readers,
// the catch-up admission). server_impl.hpp says which thread runs what and what guards what;
// beast_support.hpp holds the helpers they share. This file is over 600 lines for that reason:
// it is one responsibility (a connection's life from accept to shutdown, plain and TLS), and a
// fifth Beast translation unit would add about 25 s to every build on two cores.
//
// g++ 12: every co_await names its non-trivial operands first (beast_support.hpp).
#include "http/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/thread_name.hpp"
#include "http/request_head.hpp"
#include "http/server_impl.hpp"
#include "http/tls_stream.hpp"

namespace ordo::http {

namespace {

// A shutdown checks this often whether every connection has ended.
constexpr std::chrono::milliseconds k_drain_poll_interval{20};
// After the shutdown timeout cuts connections, how long their coroutines get to unwind before
// the io_context is stopped under them.
constexpr std::chrono::milliseconds k_cut_grace{1000};
// Connections past --max-connections that are read far enough to answer /health or /ready (and
// 503 to anything else); past these, new connections are closed at once.
constexpr std::size_t k_overflow_connections = 64;
// How long such a connection gets to send its request headers, and then to take the answer; and
// how many bytes of its headers are read, and of what follows them before closing.
constexpr std::chrono::milliseconds k_overflow_timeout{2000};
constexpr std::uint32_t k_overflow_header_bytes = 8 << 10;
constexpr std::size_t k_overflow_drain_bytes = 64 << 10;
// File descriptors beyond the connections: the listener, the database, its WAL and the readers'
// connections, logs.
constexpr rlim_t k_descriptor_headroom = 256;
// The most a read of a request's body takes at once (its buffer holds this much at most).
constexpr std::size_t k_body_read_bytes = 64 << 10;
// Connections the accept loop takes from the backlog per turn, beyond the one it waited for.
constexpr int k_accepts_per_turn = 64;
// After a failed accept (most likely out of file descriptors), a pause instead of a busy loop.
constexpr std::chrono::milliseconds k_accept_retry_delay{100};
// The read that waits for a request's first bytes takes at most this many; the rest of a larger
// request is read as the parser asks. Small, because it is held while the connection waits:
// 16 KiB left each of 10,000 connecting SSE readers a dirty page the allocator kept after the
// storm (issue 19, (f)). 2 KiB holds a small append's header and body, token included.
constexpr std::size_t k_first_read_bytes = 2 << 10;
// Refused connections are logged at most this often, with counts.
constexpr std::chrono::seconds k_refusal_log_interval{10};
// How long a TLS connection that ends waits for the client's answer to its close_notify.
constexpr std::chrono::milliseconds k_tls_shutdown_timeout{1000};

std::string peer_address(const beast::tcp_stream& stream) {
  beast::error_code ec;
  auto endpoint = stream.socket().remote_endpoint(ec);
  if (ec) return "an unknown peer";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// The TLS settings server.cpp serves with, built from the files (http/tls_context.hpp).
result<std::shared_ptr<asio::ssl::context>> load_tls_context(const tls_files& files) {
  auto native = make_server_tls_context(files);
  if (!native) return std::move(native).error();
  // asio's context takes ownership of the SSL_CTX.
  return std::make_shared<asio::ssl::context>(native->release());
}

// Every connection is a file descriptor: lets the process open as many as max_connections and
// the reserve need (raising the soft limit up to the hard one), and warns when it cannot.
void ensure_descriptor_limit(std::size_t max_connections) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  rlim_t wanted =
      static_cast<rlim_t>(max_connections) + k_overflow_connections + k_descriptor_headroom;
  if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= wanted) return;
  rlimit raised = limit;
  raised.rlim_cur =
      limit.rlim_max == RLIM_INFINITY || limit.rlim_max >= wanted ? wanted : limit.rlim_max;
  if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  if (limit.rlim_cur < wanted) {
    spdlog::warn(
        "the open-file limit ({}) is below what --max-connections={} needs ({}): connections "
        "beyond about {} wait in the listen backlog; raise the limit (ulimit -n) or lower "
        "--max-connections",
        static_cast<unsigned long long>(limit.rlim_cur), max_connections,
        static_cast<unsigned long long>(wanted),
        static_cast<unsigned long long>(
            limit.rlim_cur > k_descriptor_headroom ? limit.rlim_cur - k_descriptor_headroom : 0));
  }
}

// Expected socket failures (EOF, resets, timeouts, cancels) come back as error codes through
// as_tuple and end their connection quietly. Anything thrown ends only the coroutine that threw
// it, and is logged here, once: never rethrown into an io_context, where it would stop a thread
// that serves other connections.
void log_exception(std::string_view what, std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("{} ended by an exception: {}", what, ex.what());
  } catch (...) {
    spdlog::error("{} ended by an exception that is not a std::exception", what);
  }
}

void log_connection_exception(std::exception_ptr e) {
  log_exception("connection", e);
}

}  // namespace

http::request_head head_of(const request& req) {
  http::request_head h;
  h.version = req.version();
  for (auto [it, end] = req.equal_range(bhttp::field::transfer_encoding); it != end; ++it)
    h.transfer_encodings.push_back(it->value());
  for (auto [it, end] = req.equal_range(bhttp::field::host); it != end; ++it)
    h.hosts.push_back(it->value());
  return h;
}

// ---- server -------------------------------------------------------------------------------------

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
server::~server() {
  stop();
}

result<std::unique_ptr<server>> server::bind(server_options options, stream_engine& engine,
                                             sessions::session_service& sessions) {
  if (options.max_connections == 0 || options.max_catch_up_reads == 0) {
    return make_failure(failure_kind::invalid, "invalid_limit",
                        "--max-connections and --max-catch-up-reads must be at least 1");
  }
  if (options.sse_write_timeout.count() <= 0) {
    return make_failure(failure_kind::invalid, "invalid_limit",
                        "--sse-write-timeout must be longer than 0 ms");
  }
  ensure_descriptor_limit(options.max_connections);
  std::shared_ptr<asio::ssl::context> tls;
  if (options.tls) {
    auto loaded = load_tls_context(*options.tls);
    if (!loaded) return std::move(loaded).error();
    tls = std::move(*loaded);
  }
  auto p = std::make_unique<impl>(std::move(options), engine, sessions);
  {
    mutex_lock lock(p->tls_mu);
    p->tls_context = std::move(tls);
  }
  beast::error_code ec;
  auto address = asio::ip::make_address(p->options.host, ec);
  if (ec) {
    return make_failure(failure_kind::invalid, "invalid_host",
                        "--host '" + p->options.host + "' is not an IP address");
  }
  auto cors = cors_policy::parse(p->options.cors_origins);
  if (!cors) return std::move(cors).error();
  set_cors_policy(std::move(*cors));
  const bool authenticated = p->options.auth && p->options.auth->enabled();
  if (!authenticated && !address.is_loopback()) {
    if (!p->options.allow_unauthenticated) {
      return make_failure(
          failure_kind::invalid, "unauthenticated_public_bind",
          "refusing to serve " + p->options.host +
              " without authentication: anyone who can reach it could read every transcript "
              "and delete every stream. Turn on --auth jwt or --auth tokens (docs/SECURITY.md), "
              "or bind 127.0.0.1, or give --allow-unauthenticated if something in front of "
              "ordo authenticates");
    }
    spdlog::warn(
        "serving {} WITHOUT authentication (--allow-unauthenticated): anyone who can "
        "reach this address can read and change everything",
        p->options.host);
  }
  tcp::endpoint endpoint{address, p->options.port};
  p->acceptor.open(endpoint.protocol(), ec);
  if (!ec) p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor.bind(endpoint, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  // For listen()'s direct accepts of the backlog.
  if (!ec) p->acceptor.non_blocking(true, ec);
  if (ec) {
    return make_failure(failure_kind::unavailable, "listen_failed",
                        "cannot listen on " + p->options.host + ":" +
                            std::to_string(p->options.port) + ": " + ec.message());
  }
  p->options.port = p->acceptor.local_endpoint().port();
  return std::unique_ptr<server>(new server(std::move(p)));
}

std::uint16_t server::port() const {
  return impl_->options.port;
}

bool server::tls() const {
  return impl_->options.tls.has_value();
}

status server::reload_tls() {
  if (!impl_->options.tls) return ok_v;
  auto loaded = load_tls_context(*impl_->options.tls);
  if (!loaded) return std::move(loaded).error();
  mutex_lock lock(impl_->tls_mu);
  impl_->tls_context = std::move(*loaded);
  return ok_v;
}

void server::run() {
  auto& iocs = impl_->iocs;
  {
    mutex_lock lock(impl_->keep_running_mu);
    for (auto& ioc : iocs)
      impl_->keep_running.push_back(asio::make_work_guard(*ioc));
    impl_->keep_running.push_back(asio::make_work_guard(impl_->wake_ioc));
  }
  // If the accept loop ever ends by an exception, the server accepts nothing more: say so.
  asio::co_spawn(*iocs.front(), impl_->listen(),
                 [](std::exception_ptr e) { log_exception("the accept loop", e); });
  // Live readers are woken on the wake thread, not on the writer's; there the wake task writes
  // to parked SSE readers itself.
  impl_->engine.set_wake_executor([p = impl_.get()](std::function<void()> wake) {
    asio::post(p->wake_ioc, [wake = std::move(wake)] {
      wake_task_scope scope;
      wake();
    });
  });
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < iocs.size(); ++i)
    threads.emplace_back([ioc = iocs[i].get(), i] {
      name_this_thread("ordo-net-" + std::to_string(i));
      ioc->run();
    });
  threads.emplace_back([p = impl_.get()] {
    name_this_thread("ordo-wake");
    p->wake_ioc.run();
  });
  // The calling thread, network thread 0, keeps the process's name: pidof and killall find
  // ordo by the main thread's name.
  iocs.front()->run();
  for (auto& t : threads)
    t.join();
  impl_->engine.set_wake_executor({});
}

void server::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  asio::io_context& first = *impl_->iocs.front();
  asio::post(first, [p = impl_.get(), &first] {
    asio::co_spawn(first, p->drain(),
                   [](std::exception_ptr e) { log_exception("the shutdown", e); });
  });
}

// ---- accepting ----------------------------------------------------------------------------------

awaitable<void> server::impl::listen() {
  asio::steady_timer retry(co_await asio::this_coro::executor);
  for (;;) {
    auto [ec, socket] =
        co_await acceptor.async_accept(next_context().get_executor(), tuple_awaitable);
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) co_return;
      spdlog::warn("accept failed: {}; retrying in {} ms", ec.message(),
                   k_accept_retry_delay.count());
      retry.expires_after(k_accept_retry_delay);
      co_await retry.async_wait(tuple_awaitable);
      continue;
    }
    serve_accepted(std::move(socket));
    // The rest of the backlog is taken now, up to k_accepts_per_turn, not one connection per
    // turn of this thread's queue: behind a storm of 10,000 connects, a load balancer's /health
    // probe waited for thousands of turns of a thread busy with the storm's readers (issue 19,
    // (h)). The acceptor is non-blocking: an empty backlog answers would_block at once.
    for (int i = 0; i < k_accepts_per_turn && !stopping; ++i) {
      asio::io_context& context = *iocs[next_ioc % iocs.size()];
      beast::error_code more_ec;
      tcp::socket more = acceptor.accept(context, more_ec);
      if (more_ec) break;  // would_block, or an error the next async accept meets and logs
      ++next_ioc;
      serve_accepted(std::move(more));
    }
  }
}

void server::impl::serve_accepted(tcp::socket socket) {
  // Small answers (a 204, one SSE event) go out at once instead of waiting for the previous
  // segment's ACK (Nagle's algorithm with delayed ACKs adds up to 40 ms).
  beast::error_code nodelay_ec;
  socket.set_option(tcp::no_delay(true), nodelay_ec);
  // Non-blocking for write_response()'s direct writes (asynchronous operations do not care).
  socket.non_blocking(true, nodelay_ec);
  if (served_connections.load() >= options.max_connections) {
    refuse(std::move(socket));
    return;
  }
  ++served_connections;
  std::shared_ptr<asio::ssl::context> tls;
  if (options.tls) {
    mutex_lock lock(tls_mu);
    tls = tls_context;
  }
  asio::co_spawn(socket.get_executor(), session(std::move(socket), std::move(tls)),
                 log_connection_exception);
}

void server::serve_connected(int native_socket) {
  asio::io_context& ioc = impl_->next_context();
  asio::post(ioc, [p = impl_.get(), &ioc, native_socket] {
    tcp::socket socket(ioc);
    beast::error_code ec;
    socket.assign(tcp::v4(), native_socket, ec);
    if (ec) {
      spdlog::warn("serve_connected: cannot adopt socket {}: {}", native_socket, ec.message());
      ::close(native_socket);
      return;
    }
    p->serve_accepted(std::move(socket));
  });
}

void server::impl::refuse(tcp::socket socket) {
  // Over TLS the reserve's plain answer would be unreadable, and a handshake is what an
  // overloaded server can least afford: TLS connections past the limit are closed at once.
  if (!options.tls && overflow_connections.load() < k_overflow_connections) {
    ++overflow_connections;
    ++refused_since_log;
    asio::co_spawn(socket.get_executor(), answer_over_limit(std::move(socket)),
                   log_connection_exception);
  } else {
    // The reserve is busy too: closing at once is still an answer, where the backlog is none.
    beast::error_code ignored;
    socket.close(ignored);
    ++dropped_since_log;
  }
  auto now = std::chrono::steady_clock::now();
  if (now - last_refusal_log >= k_refusal_log_interval) {
    spdlog::warn(
        "connection limit reached (--max-connections={}): {} connections answered 503 "
        "too_many_connections, {} closed at once since the last report",
        options.max_connections, refused_since_log, dropped_since_log);
    refused_since_log = 0;
    dropped_since_log = 0;
    last_refusal_log = now;
  }
}

awaitable<void> server::impl::answer_over_limit(tcp::socket socket) {
  struct counted {
    std::atomic<std::size_t>& n;
    ~counted() { --n; }
  } in_reserve{overflow_connections};
  auto owned = std::make_shared<beast::tcp_stream>(std::move(socket));
  beast::tcp_stream& stream = *owned;
  // When the headers are late the read is cancelled, not the connection closed (as the stream's
  // own timeout would do), so that a client that sent nothing still gets its 503.
  asio::steady_timer deadline(stream.get_executor(), k_overflow_timeout);
  deadline.async_wait([weak = std::weak_ptr<beast::tcp_stream>(owned)](beast::error_code ec) {
    if (ec) return;
    if (auto s = weak.lock()) s->socket().cancel();
  });
  beast::flat_buffer buffer;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(k_overflow_header_bytes);
  auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, tuple_awaitable);
  deadline.cancel();
  if (ec == asio::error::eof || ec == bhttp::error::end_of_stream ||
      ec == asio::error::connection_reset) {
    co_return;  // the client left
  }
  request dummy;
  dummy.version(11);
  const request& req = ec ? dummy : parser.get();
  std::string_view target = ec ? std::string_view() : std::string_view(req.target());
  target = target.substr(0, target.find('?'));
  bool probe = (req.method() == bhttp::verb::get || req.method() == bhttp::verb::head) &&
               (target == "/health" || target == "/ready");
  string_response res =
      probe ? health_response(req, target)
            : error_response(req, make_failure(failure_kind::unavailable, "too_many_connections",
                                               "the server is serving its limit of " +
                                                   std::to_string(options.max_connections) +
                                                   " connections (--max-connections); retry "
                                                   "after Retry-After"));
  res.keep_alive(false);
  stream.expires_after(k_overflow_timeout);
  metrics.count_response(probe ? route_class::health : classify_route(target), res.result_int());
  auto [wec, wn] = co_await bhttp::async_write(stream, res, tuple_awaitable);
  if (wec) co_return;
  // A lingering close: closing with the rest of the request unread would reset the connection,
  // and a reset can destroy the answer before the client reads it.
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  std::array<char, 4096> sink;
  std::size_t drained = 0;
  stream.expires_after(k_overflow_timeout);
  while (drained < k_overflow_drain_bytes) {
    auto [rec, rn] = co_await stream.async_read_some(asio::buffer(sink), tuple_awaitable);
    if (rec) break;
    drained += rn;
  }
}

// ---- a connection's requests --------------------------------------------------------------------

connection::connection(tcp::socket socket) : stream(std::move(socket)) {}
connection::~connection() = default;

template <class Stream>
awaitable<void> server::impl::refuse_body_too_large(connection& conn, Stream& io,
                                                    const request& req) {
  auto res = error_response(
      req, make_failure(failure_kind::too_large, "body_too_large",
                        "the request body is larger than the limit of " +
                            std::to_string(options.max_body_bytes) + " bytes (--max-body-bytes)"));
  res.keep_alive(false);
  conn.stream.expires_after(k_write_timeout);
  metrics.count_response(route_class::other, res.result_int());
  co_await bhttp::async_write(io, res, tuple_awaitable);
}

awaitable<void> server::impl::session(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls) {
  auto conn = std::make_shared<connection>(std::move(socket));
  {
    mutex_lock lock(connections_mu);
    connections.insert(conn);
  }
  struct registration {
    impl& owner;
    std::shared_ptr<connection> conn;
    ~registration() {
      {
        mutex_lock lock(owner.connections_mu);
        owner.connections.erase(conn);
      }
      --owner.served_connections;
    }
  } registered{*this, conn};
  if (!tls) {
    co_await serve_requests(*conn, conn->stream);
    beast::error_code ignored;
    conn->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return;
  }
  conn->tls = std::make_unique<tls_stream>(conn->stream, std::move(tls));
  // The handshake is the connection's first wait for its client, like the wait for a request:
  // it gets idle_timeout, and a shutdown cancels it (conn->idle is still set).
  if (stopping) co_return;
  conn->stream.expires_after(options.idle_timeout);
  auto [hec] =
      co_await conn->tls->stream.async_handshake(asio::ssl::stream_base::server, tuple_awaitable);
  if (hec) {
    // Plain HTTP on the TLS port, TLS 1.1 or older, no shared cipher, a client that sent
    // nothing: only this connection ends.
    spdlog::debug("TLS handshake with {} failed: {}", peer_address(conn->stream), hec.message());
    co_return;
  }
  co_await serve_requests(*conn, conn->tls->stream);
  // close_notify, so the client knows the connection ended here and was not cut; its answer is
  // waited for only briefly.
  conn->stream.expires_after(k_tls_shutdown_timeout);
  co_await conn->tls->stream.async_shutdown(tuple_awaitable);
}

// Its own coroutine, so that the parser and the error answers live in a frame freed once the
// request is read, not in serve_requests()' frame for the connection's whole life: an idle SSE
// reader keeps that frame for as long as it stays (issue 19, (f)).
template <class Stream>
awaitable<bool> server::impl::read_request(connection& conn, Stream& io, beast::flat_buffer& buffer,
                                           request& req) {
  beast::tcp_stream& stream = conn.stream;  // its timeouts; requests are read from `io`
  conn.idle = true;
  bhttp::request_parser<bhttp::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
  parser.body_limit(options.max_body_bytes);
  // The deadlines of a request: idle_timeout until its first bytes arrive, then header_timeout
  // for its whole head and body_timeout for its body, so a client that dribbles bytes is cut
  // like a silent one. (Through `io`: under TLS the first bytes are decrypted like the rest.)
  if (buffer.size() == 0) {
    stream.expires_after(options.idle_timeout);
    auto [fec, fn] =
        co_await io.async_read_some(buffer.prepare(k_first_read_bytes), tuple_awaitable);
    buffer.commit(fn);
    if (fec) co_return false;
  }
  stream.expires_after(options.header_timeout);
  auto [ec, n] = co_await bhttp::async_read_header(io, buffer, parser, tuple_awaitable);
  conn.idle = false;
  if (ec == bhttp::error::body_limit) {
    // Beast refuses a declared Content-Length over the limit while reading the headers: the
    // body is never read.
    request dummy;
    dummy.version(11);
    co_await refuse_body_too_large(conn, io, dummy);
    co_return false;
  }
  if (ec) {
    if (ec == bhttp::error::header_limit) {
      request dummy;
      dummy.version(11);
      auto res = error_response(
          dummy, make_failure(failure_kind::headers_too_large, "headers_too_large",
                              "request headers exceed " + std::to_string(options.max_header_bytes) +
                                  " bytes"));
      res.keep_alive(false);
      stream.expires_after(k_write_timeout);
      metrics.count_response(route_class::other, res.result_int());
      co_await bhttp::async_write(io, res, tuple_awaitable);
    } else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
               ec != beast::error::timeout && ec != asio::error::connection_reset &&
               ec != asio::error::operation_aborted && ec != asio::ssl::error::stream_truncated) {
      request dummy;
      dummy.version(11);
      auto res =
          error_response(dummy, make_failure(failure_kind::invalid, "malformed_request",
                                             "the HTTP request is malformed: " + ec.message()));
      res.keep_alive(false);
      stream.expires_after(k_write_timeout);
      metrics.count_response(route_class::other, res.result_int());
      co_await bhttp::async_write(io, res, tuple_awaitable);
    }
    co_return false;
  }
  request& head = parser.get();
  if (auto refused = check_request_head(head_of(head))) {
    // Its body's length is unknown, or its Host cannot be trusted: nothing more is read.
    auto res = error_response(head, *refused);
    res.keep_alive(false);
    metrics.count_response(route_class::other, res.result_int());
    stream.expires_after(k_write_timeout);
    co_await bhttp::async_write(io, res, tuple_awaitable);
    co_return false;
  }
  if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
    bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, head.version()};
    stream.expires_after(k_write_timeout);
    auto [wec, wn] = co_await bhttp::async_write(io, cont, tuple_awaitable);
    if (wec) co_return false;
  }
  // A small request's body usually arrived with its header: parsed from the buffer here, it
  // saves a round through the scheduler per request. Only the rest is read from the socket.
  beast::error_code rec;
  while (!parser.is_done() && buffer.size() > 0) {
    std::size_t used = parser.put(buffer.data(), rec);
    buffer.consume(used);
    if (rec == bhttp::error::need_more) rec = {};
    if (rec || used == 0) break;
  }
  if (!rec && !parser.is_done()) {
    // The rest of a larger body is read in reads of up to k_body_read_bytes: Beast reads into
    // the room the buffer has (at least 512 bytes), and the small first read left little.
    if (auto rest = parser.content_length_remaining()) {
      buffer.reserve(static_cast<std::size_t>(
          std::min<std::uint64_t>(*rest + buffer.size(), k_body_read_bytes)));
    }
    stream.expires_after(options.body_timeout);
    auto [ec2, rn] = co_await bhttp::async_read(io, buffer, parser, tuple_awaitable);
    rec = ec2;
  }
  if (rec) {
    if (rec == bhttp::error::body_limit) {
      co_await refuse_body_too_large(conn, io, head);
    } else if (rec != asio::error::eof && rec != bhttp::error::end_of_stream &&
               rec != beast::error::timeout && rec != asio::error::connection_reset &&
               rec != bhttp::error::partial_message && rec != asio::ssl::error::stream_truncated) {
      auto res = error_response(
          head, make_failure(failure_kind::invalid, "malformed_request",
                             "the HTTP request body is malformed: " + rec.message()));
      res.keep_alive(false);
      stream.expires_after(k_write_timeout);
      metrics.count_response(route_class::other, res.result_int());
      co_await bhttp::async_write(io, res, tuple_awaitable);
    }
    co_return false;
  }
  req = parser.release();
  co_return true;
}

template <class Stream>
awaitable<void> server::impl::serve_requests(connection& conn, Stream& io) {
  beast::flat_buffer buffer;
  for (;;) {
    // Checked on the connection's thread right before the read starts: a shutdown that began
    // earlier ends the connection here, one that begins later cancels the read (drain()).
    if (stopping) break;
    request req;
    if (!co_await read_request(conn, io, buffer, req)) break;
    // The read buffer's memory goes back while the request is answered, unless it holds the
    // next request already: an SSE response or a long-poll may last minutes, and 10,000 of them
    // must not each keep k_first_read_bytes (issue 19, (f)). A request/response connection pays
    // one allocation per request for it.
    if (buffer.size() == 0) buffer.shrink_to_fit();
    bool keep_alive = co_await dispatch(req, conn);
    if (conn.sse) {
      // An SSE response, its head written: it lasts until the reader goes, and is the
      // connection's last. Served here, after dispatch() and its handler returned, with the
      // request and the read buffer let go first: an idle reader keeps no more than it needs.
      req = {};
      buffer.clear();
      buffer.shrink_to_fit();
      auto events = serve_sse(conn, std::move(conn.sse));
      co_await std::move(events);
      break;
    }
    if (!keep_alive || stopping) break;
  }
}

namespace {

// Writes at once what the non-blocking socket takes, and waits only for the rest.
awaitable<bool> write_plain_response(beast::tcp_stream& stream, string_response& res,
                                     bool closing) {
  if (closing) res.keep_alive(false);
  bool keep = res.keep_alive();
  bhttp::serializer<false, bhttp::string_body> serializer{res};
  beast::error_code ec = asio::error::would_block;
  if (stream.socket().non_blocking()) {
    ec = {};
    while (!ec && !serializer.is_done())
      bhttp::write_some(stream.socket(), serializer, ec);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    stream.expires_after(k_write_timeout);
    auto [aec, n] = co_await bhttp::async_write(stream, serializer, tuple_awaitable);
    ec = aec;
  }
  co_return !ec && keep;
}

awaitable<bool> write_tls_response(beast::tcp_stream& stream, tls_stream& tls, string_response& res,
                                   bool closing) {
  if (closing) res.keep_alive(false);
  bool keep = res.keep_alive();
  stream.expires_after(k_write_timeout);
  auto [ec, n] = co_await bhttp::async_write(tls.stream, res, tuple_awaitable);
  co_return !ec && keep;
}

}  // namespace

// Not a coroutine: plain HTTP's answers pay for no more than this test (server_impl.hpp).
awaitable<bool> write_response(connection& conn, string_response& res, bool closing) {
  if (conn.tls) return write_tls_response(conn.stream, *conn.tls, res, closing);
  return write_plain_response(conn.stream, res, closing);
}

// ---- shutdown -----------------------------------------------------------------------------------

std::size_t server::impl::open_connections() {
  mutex_lock lock(connections_mu);
  return connections.size();
}

// Polls: the end of a connection cannot wake this coroutine safely, because frames also end
// while the io_context is being destroyed.
awaitable<void> server::impl::wait_for_connections(std::chrono::steady_clock::time_point deadline) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  while (open_connections() > 0) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    timer.expires_after(
        std::min<std::chrono::steady_clock::duration>(k_drain_poll_interval, deadline - now));
    co_await timer.async_wait(tuple_awaitable);
  }
}

awaitable<void> server::impl::drain() {
  beast::error_code ignored;
  acceptor.close(ignored);
  std::vector<std::shared_ptr<connection>> open;
  {
    mutex_lock lock(connections_mu);
    open.assign(connections.begin(), connections.end());
  }
  spdlog::info("shutting down: {} open connections, waiting up to {} ms for them to end",
               open.size(), options.shutdown_timeout.count());
  // `stopping` is already set: each connection sees it at its next step, or here, on its own
  // thread, if it is waiting for a request or for a change.
  for (auto& conn : open) {
    asio::post(conn->stream.get_executor(), [conn] {
      if (conn->idle) conn->stream.cancel();
      conn->wake_waiter();
    });
  }
  open.clear();

  co_await wait_for_connections(std::chrono::steady_clock::now() + options.shutdown_timeout);
  {
    mutex_lock lock(connections_mu);
    open.assign(connections.begin(), connections.end());
  }
  if (open.empty()) {
    release_threads();  // with the acceptor closed, run() returns once this ends
    co_return;
  }
  spdlog::warn("shutdown timeout of {} ms passed: cutting {} connections still open",
               options.shutdown_timeout.count(), open.size());
  for (auto& conn : open) {
    asio::post(conn->stream.get_executor(), [conn] {
      {
        // A parked reader's socket is written by the wake task under live_mu: unpark it first.
        mutex_lock lock(conn->live_mu);
        conn->live.parked = false;
      }
      conn->stream.close();
    });
  }
  open.clear();
  co_await wait_for_connections(std::chrono::steady_clock::now() + k_cut_grace);
  if (std::size_t left = open_connections(); left > 0) {
    spdlog::warn("{} connections did not end after being cut; stopping without them", left);
  }
  release_threads();
  for (auto& ioc : iocs)
    ioc->stop();
  wake_ioc.stop();
}

}  // namespace ordo::http
