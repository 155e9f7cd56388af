// server::impl and `connection`: the state the HTTP server's Beast translation units share.
// Private to http/ (it includes Beast): server.cpp binds, accepts, runs each connection's
// request loop and shuts down; router.cpp routes a request; stream_handlers.cpp answers the
// stream methods; live_readers.cpp serves the waits at a stream's tail (long-poll, SSE) and the
// catch-up admission.
//
// Threads, and what runs on each:
//   - the network threads (options.threads): each runs its own io_context (impl::iocs). A
//     connection is given one of them at accept and lives there until it closes: its session()
//     coroutine, the handlers it calls, its timers and the callbacks posted to it run on that
//     thread, in order, so they need no strand. iocs.front() also runs the accept loop (listen)
//     and the shutdown (drain).
//   - the wake thread (impl::wake_ioc): runs the stream engine's wake tasks after each commit
//     (wake_task_scope). It wakes a waiting long-poll by posting a timer cancel to its
//     connection's thread, and writes to a parked SSE reader's socket itself (deliver_parked).
//   - the engine's writer and reader threads complete engine calls; await_engine() and the
//     waiter callbacks post the outcome to the caller's network thread and do nothing else.
//   - any thread: server::stop(), which sets `stopping` and posts drain() to iocs.front().
//
// What guards what:
//   - impl::connections: impl::connections_mu (sessions register and deregister on their
//     threads; drain() reads it on iocs.front()).
//   - impl::keep_running: impl::keep_running_mu (run() fills it, drain() releases it).
//   - impl::served_connections, overflow_connections, next_ioc, stopping: atomics.
//   - impl::refused_since_log, dropped_since_log, last_refusal_log: the accept loop's alone.
//   - impl::options is not changed after bind(); engine, sessions, admission and metrics are
//     safe from any thread.
//   - impl::tls_context: impl::tls_mu (the accept loop copies it for each connection,
//     reload_tls() replaces it from any thread). A connection keeps the context it began with
//     (tls_stream::context), so a reload never changes an open connection.
//   - connection::live: connection::live_mu, taken by the connection's thread and the wake
//     thread (and by the shutdown's cut, posted to the connection's thread).
//   - every other member of a connection: its own network thread only; drain() posts to it.
//     That includes a TLS connection's tls_stream: OpenSSL's state of a connection must never be
//     used by two threads, so the wake thread never writes to a TLS connection (invariant 5).
//
// Invariants:
//   (1) the wake thread writes to a connection's socket only while live.parked is set, holding
//       live_mu; whoever wakes the coroutine clears `parked` under live_mu first, so nothing is
//       written for it between its wake-up and its own next write.
//   (2) `stopping` is set before drain() posts its cancels, and a connection checks it on its
//       own thread after it starts waiting (conn.wait set, parked on its socket, or its header
//       read about to start):
//       a shutdown is seen by the check or cancels the wait, never missed.
//   (3) what the engine keeps for a connection (a record's waiter or subscriber, an admission
//       ticket's callback) holds its timer or the connection weakly: nothing the engine holds
//       keeps a connection, a timer or an io_context alive after the server stops.
//   (4) connections and admission are declared before iocs: coroutine frames destroyed with an
//       io_context still deregister from them.
//   (5) a TLS connection's live.inline_ok is false: its parked SSE reader is woken to write
//       itself (deliver_parked writes to plain sockets only).
#pragma once

#include <atomic>
#include <boost/url/url_view.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/thread_annotations.hpp"
#include "http/beast_support.hpp"
#include "http/change_filter.hpp"
#include "http/server.hpp"
#include "http/server_metrics.hpp"
#include "streams/catch_up_admission.hpp"

namespace boost::asio::ssl {
class context;
}

namespace ordo::http {

// A TLS connection's encryption over its tcp_stream (http/tls_stream.hpp: only the files that
// read or write a connection include Beast's SSL).
struct tls_stream;

// A caught-up SSE reader, parked: its coroutine waits on its socket (wait_at_tail, woken by a
// change, its heartbeat or its client leaving) while the task that wakes the stream's readers
// writes new messages straight to that socket (deliver_parked, in live_readers.cpp). Guarded by
// connection::live_mu.
struct live_parking {
  // The coroutine waits; the wake task may write for it. Cleared by whoever wakes the coroutine,
  // so nothing is written for it between its wake-up and its own next write.
  bool parked = false;
  // Subscribed to `record` (stream_record::subscribe) from the first parking to the response's
  // end.
  std::optional<std::uint64_t> subscription;
  // Set by the coroutine before it first parks; valid while it runs.
  stream_record* record = nullptr;
  const stream_engine* engine = nullptr;
  const std::optional<std::string>* client_cursor = nullptr;
  // False for a filtered feed (only the coroutine applies filters) and for TLS (invariant 5).
  bool inline_ok = false;
  // The reader's offset and whether its last control event said upToDate: moved on by the wake
  // task's writes, taken back by the coroutine when it wakes.
  stream_position position;
  bool at_tail = false;
  // What a partial write left of a chunk: the coroutine sends it before anything else.
  std::string unsent;
};

// An SSE response whose head is written: what its loop (server::impl::serve_sse) needs. The
// request's handler hands it to the connection's request loop through connection::sse, so the
// frames of dispatch() and the handler, and the request itself, are gone for as long as the
// reader stays: hours, for an idle one (issue 19, (f)).
struct sse_reader {
  std::shared_ptr<stream_record> record;
  stream_position position;
  // The first chunk, read before the head was written (so that its failure got a status).
  std::optional<read_chunk> pending;
  std::optional<std::string> client_cursor;
  // The change feed's filter; null for every other stream.
  std::unique_ptr<change_filter> filter;
  // The token's in-flight cap, held until the reader goes (dispatch() moves it in).
  token_limits::in_flight held;
  // The client's address, for the log of a stalled reader (its socket is closed by then).
  std::string peer;
};

// One open connection, as a shutdown sees it. Shared by its session coroutine and the server's
// registry of connections; its members are used only on the connection's thread, except
// `live`, which the wake task uses under live_mu.
struct connection : live_subscriber, std::enable_shared_from_this<connection> {
  // Defined in server.cpp, where tls_stream is complete.
  explicit connection(tcp::socket socket);
  ~connection() override;
  // Its stream changed while it serves SSE: see deliver_parked (live_readers.cpp).
  void on_change() override;
  // The TCP connection: its timeouts, cancel and close, also for TLS.
  beast::tcp_stream stream;
  // Null for plain HTTP. For HTTPS, the encryption over `stream`: every request and answer is
  // read and written through it (write_response(), serve_sse()).
  std::unique_ptr<tls_stream> tls;
  // Waiting for the headers of its next request: a shutdown may close it at once.
  bool idle = true;
  // The timer of a live read waiting for a change: a shutdown cancels it to end the wait.
  std::weak_ptr<asio::steady_timer> wait;
  // A parked SSE reader waits on its socket instead (wait_at_tail, live_readers.cpp): set while
  // it does. `heartbeat_due`: the heartbeat wheel, not a change, woke it.
  bool waits_on_socket = false;
  bool heartbeat_due = false;
  // Ends the connection's wait for a change (its timer's, or its socket's). On its thread.
  void wake_waiter();
  mutex live_mu;
  live_parking live GUARDED_BY(live_mu);
  // What the request being served is for (/metrics counts its answer by it).
  route_class route = route_class::other;
  // Set by begin_sse() once an SSE response's head is written; serve_requests() then serves
  // it with serve_sse() and ends the connection.
  std::unique_ptr<sse_reader> sse;
};

// Writes `res` to the connection; true when the connection may serve another request.
// `closing`: the server is shutting down, so this answer is the connection's last and says so.
// On plain HTTP most answers fit in the socket's send buffer: they are written at once (the
// socket is non-blocking from its accept on), without a round through the scheduler; only what
// the socket does not take waits for it, with k_write_timeout. Over TLS the answer is written
// through the connection's SSL stream. Defined in server.cpp.
awaitable<bool> write_response(connection& conn, string_response& res, bool closing);

// `gone`: a parked SSE reader's client closed its connection.
enum class wait_outcome { changed, timed_out, stopping, gone };
enum class admission_outcome { admitted, timed_out, stopping };

// Waits until the stream's state changes (new data, closure, deletion), the timeout passes or
// the server stops (`stopping` is set before the shutdown cancels conn.wait on this thread).
// Runs on the connection's thread. Defined in live_readers.cpp.
awaitable<wait_outcome> wait_for_change(connection& conn, const std::atomic<bool>& stopping,
                                        stream_record& stream, stream_position position,
                                        std::chrono::milliseconds timeout);

// Marks the wake thread's wake task while it runs (server::run wraps each task in one): a
// wake-up inside it writes to parked SSE readers itself, anywhere else (the writer thread,
// tests without a server) it only wakes their coroutines. Defined in live_readers.cpp.
class wake_task_scope {
 public:
  wake_task_scope();
  ~wake_task_scope();
  wake_task_scope(const wake_task_scope&) = delete;
  wake_task_scope& operator=(const wake_task_scope&) = delete;
};

struct server::impl {
  impl(server_options o, stream_engine& e, sessions::session_service& s)
      : options(std::move(o)),
        engine(e),
        sessions(s),
        admission(std::max<std::size_t>(1, options.max_catch_up_reads)),
        iocs(make_iocs(options.threads)),
        acceptor(*iocs.front()) {}

  static std::vector<std::unique_ptr<asio::io_context>> make_iocs(int threads) {
    std::vector<std::unique_ptr<asio::io_context>> out;
    for (int i = 0; i < std::max(1, threads); ++i)
      out.push_back(std::make_unique<asio::io_context>(1));
    return out;
  }

  server_options options;
  stream_engine& engine;
  sessions::session_service& sessions;
  // Every open connection, for the shutdown. Declared before iocs: coroutine frames destroyed
  // with an io_context still deregister here.
  mutex connections_mu;
  std::unordered_set<std::shared_ptr<connection>> connections GUARDED_BY(connections_mu);
  // Connections being served (counted at accept, before their coroutine registers above), and
  // connections past the limit being answered; compared with options.max_connections and
  // k_overflow_connections by the accept loop.
  std::atomic<std::size_t> served_connections{0};
  std::atomic<std::size_t> overflow_connections{0};
  // Declared before iocs, like connections: frames destroyed with it withdraw their tickets.
  catch_up_admission admission;
  // One io_context per network thread, each run by its thread alone: a connection lives on one
  // of them (given in turn at accept), so its handlers need no strand and the threads share no
  // scheduler lock. iocs.front() also runs the acceptor and the shutdown.
  std::vector<std::unique_ptr<asio::io_context>> iocs;
  std::atomic<std::size_t> next_ioc{0};
  // The wake tasks (live readers woken after a commit) run on a thread of their own: a round
  // over 10,000 parked SSE readers takes tens of milliseconds, and on a connection's thread it
  // would hold up every other connection of that thread (the OS shares the cores instead).
  asio::io_context wake_ioc{1};
  // Keep each thread's run() going while its io_context has no work; released by the shutdown.
  mutex keep_running_mu;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running
      GUARDED_BY(keep_running_mu);
  tcp::acceptor acceptor;
  // The TLS settings new connections get (null: plain HTTP); replaced by reload_tls().
  mutex tls_mu;
  std::shared_ptr<asio::ssl::context> tls_context GUARDED_BY(tls_mu);
  std::atomic<bool> stopping{false};
  server_metrics metrics;
  // Per-token caps; only with authentication on.
  token_limits limits{options.token_limits};

  // Refusal counts since the last log line; used by the accept loop only.
  std::size_t refused_since_log = 0;
  std::size_t dropped_since_log = 0;
  std::chrono::steady_clock::time_point last_refusal_log{};

  asio::io_context& next_context() { return *iocs[next_ioc++ % iocs.size()]; }
  // Lets each thread's run() return once its io_context has no more work.
  void release_threads() {
    mutex_lock lock(keep_running_mu);
    keep_running.clear();
  }

  // ---- server.cpp: accepting, each connection's request loop, the shutdown
  awaitable<void> listen();
  // A connection accepted (or handed to serve_connected()): served on its socket's io_context,
  // or refused past max_connections. On the socket's thread.
  void serve_accepted(tcp::socket socket);
  // `tls`: the TLS context to handshake with, null for plain HTTP.
  awaitable<void> session(tcp::socket socket, std::shared_ptr<asio::ssl::context> tls);
  // The connection's requests, read from `io` (its tcp_stream, or its tls_stream's SSL stream):
  // a template so that plain HTTP reads its socket directly. Defined in server.cpp.
  template <class Stream>
  awaitable<void> serve_requests(connection& conn, Stream& io);
  // Reads the connection's next request into `req` (from `buffer`, then `io`); false when the
  // connection ends: closed, timed out, or a request refused and answered here.
  template <class Stream>
  awaitable<bool> read_request(connection& conn, Stream& io, beast::flat_buffer& buffer,
                               request& req);
  // Answers 413 body_too_large (--max-body-bytes) and ends the connection's requests.
  template <class Stream>
  awaitable<void> refuse_body_too_large(connection& conn, Stream& io, const request& req);
  // A connection past max_connections: into the reserve, or closed at once.
  void refuse(tcp::socket socket);
  // Reads the request of a connection in the reserve; answers /health and /ready, and 503
  // too_many_connections to anything else; closes.
  awaitable<void> answer_over_limit(tcp::socket socket);
  // The shutdown: runs on the io_context once stop() was called.
  awaitable<void> drain();
  std::size_t open_connections();
  // Until no connection is open or the deadline passes.
  awaitable<void> wait_for_connections(std::chrono::steady_clock::time_point deadline);
  // Counts the answer for /metrics (by conn.route) and writes it.
  awaitable<bool> respond(connection& conn, string_response& res) {
    metrics.count_response(conn.route, res.result_int());
    return write_response(conn, res, stopping);
  }

  // ---- router.cpp
  // Routes one request and answers it; true when the connection may serve another.
  awaitable<bool> dispatch(request& req, connection& conn);
  // Whether the dashboard's cookie is marked Secure: when connections are TLS.
  bool secure_cookies() const { return options.tls.has_value(); }
  // The principal of the request's credential (unrestricted() without authentication), or the
  // 401 (403 for the dashboard's cookie on a write without its header) to answer.
  result<std::shared_ptr<const auth::principal>> authenticate(const request& req, connection& conn);
  // GET and HEAD /health and /ready (also answered by connections over the limit).
  string_response health_response(const request& req, std::string_view path);

  // ---- stream_handlers.cpp
  // `who` must also be able to read a fork's source.
  awaitable<string_response> handle_put(request& req, const std::string& path,
                                        const auth::principal& who);
  awaitable<string_response> handle_post(request& req, const std::string& path);
  awaitable<string_response> handle_delete(request& req, const std::string& path);
  string_response handle_head(request& req, const std::string& path);
  // `filter` (the change feed's) drops non-matching messages; offsets stay those of the stream.
  awaitable<bool> handle_get(request& req, connection& conn, const std::string& path,
                             const boost::urls::url_view& url,
                             const change_filter* filter = nullptr);
  awaitable<string_response> catch_up_response(request& req, connection& conn,
                                               const std::shared_ptr<stream_record>& stream,
                                               stream_position position,
                                               const std::optional<std::string>& cursor,
                                               const change_filter* filter);
  // The record at `path` if it is live; otherwise an error (expired streams are reported gone
  // and handed to the writer to remove).
  result<std::shared_ptr<stream_record>> live_stream(const std::string& path);
  std::string location_for(const request& req) const;

  // ---- live_readers.cpp
  // Starts an SSE response: reads its first chunk (answering the failure if it cannot be
  // served), writes the head and sets conn.sse. Always false: the connection serves no more
  // requests.
  awaitable<bool> begin_sse(request& req, connection& conn,
                            const std::shared_ptr<stream_record>& record, stream_position position,
                            const std::optional<std::string>& client_cursor,
                            const change_filter* filter);
  // The events of an SSE response begun by begin_sse(), until the reader goes, the stream
  // ends, the response's time is up or the server stops.
  awaitable<void> serve_sse(connection& conn, std::unique_ptr<sse_reader> reader);
  // Every catch-up read: from memory at once when the tail cache serves it, otherwise through
  // the admission and the reader pool. Fails with 503 catch_up_busy after waiting
  // options.catch_up_wait_timeout, or server_stopping when a shutdown ends the wait.
  awaitable<read_result> read_admitted(connection& conn,
                                       const std::shared_ptr<stream_record>& record,
                                       stream_position position);
  // Waits for a catch-up slot; on `admitted` the caller owns one and must release it.
  awaitable<admission_outcome> admit(connection& conn);
};

}  // namespace ordo::http
