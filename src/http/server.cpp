// The only translation unit that includes Beast (it takes ~25 s to compile: keep it alone).
//
// One coroutine per connection, on the io_context of the network thread it was given at accept
// (each thread runs its own io_context, so a connection's handlers run in order without a
// strand and the threads share no scheduler lock): read a request with a header limit, a body limit
// and a timeout; route it; write the answer; repeat while keep-alive. Expected failures (EOF,
// timeouts, resets) end only that connection. Long-polls wait on the stream record's one-shot
// waiters with a timer on the connection's thread; the wake-up posts a timer cancel to that thread.
// Caught-up SSE readers park instead: the task that wakes the stream's readers writes to their
// sockets itself ("parked SSE readers" below).
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
#include "http/server.hpp"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/url.hpp>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "base/rfc3339.hpp"
#include "http/change_filter.hpp"
#include "http/dashboard.hpp"
#include "http/request_head.hpp"
#include "http/server_metrics.hpp"
#include "http/session_api.hpp"
#include "http/stream_protocol.hpp"
#include "streams/catch_up_admission.hpp"
#include "streams/cursor.hpp"
#include "streams/sse_encoding.hpp"

namespace ordo::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

using string_response = bhttp::response<bhttp::string_body>;
using request = bhttp::request<bhttp::string_body>;

constexpr std::string_view k_allow_headers =
    "Content-Type, Authorization, If-None-Match, If-Match, Idempotency-Key, Last-Event-ID, "
    "Stream-Seq, Stream-TTL, Stream-Expires-At, Stream-Closed, Producer-Id, Producer-Epoch, "
    "Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, Stream-Fork-Sub-Offset";
constexpr std::string_view k_expose_headers =
    "Stream-Next-Offset, Stream-Cursor, Stream-Up-To-Date, Stream-Closed, Stream-TTL, "
    "Stream-Expires-At, Stream-SSE-Data-Encoding, Producer-Epoch, Producer-Seq, "
    "Producer-Expected-Seq, Producer-Received-Seq, ETag, Location, Content-Type, Retry-After, "
    "Idempotent-Replayed";
// Methods a browser may use on any route (CORS preflight), and the methods of a stream.
constexpr std::string_view k_cors_methods = "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS";
constexpr std::string_view k_stream_methods = "GET, POST, PUT, DELETE, HEAD, OPTIONS";
// Catch-up responses that can never change may be cached this long (section 10.1).
constexpr std::int64_t k_immutable_max_age_seconds = 60;
constexpr std::chrono::seconds k_write_timeout{30};
// How long an offset just past the published tail waits for the writer to publish it.
constexpr std::chrono::milliseconds k_publish_grace{1000};
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
// After a failed accept (most likely out of file descriptors), a pause instead of a busy loop.
constexpr std::chrono::milliseconds k_accept_retry_delay{100};
// Refused connections are logged at most this often, with counts.
constexpr std::chrono::seconds k_refusal_log_interval{10};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Security and CORS headers on every response (sections 12.7, 10).
template <class Message>
void add_common_headers(Message& m) {
  m.set(bhttp::field::server, "ordo");
  m.set("X-Content-Type-Options", "nosniff");
  m.set("Cross-Origin-Resource-Policy", "cross-origin");
  m.set(bhttp::field::access_control_allow_origin, "*");
  m.set(bhttp::field::access_control_expose_headers, k_expose_headers);
}

string_response make_response(const request& req, bhttp::status status) {
  string_response res{status, req.version()};
  res.keep_alive(req.keep_alive());
  add_common_headers(res);
  return res;
}

// A failure's answer as error_answer_for() maps it (http/error_response.hpp); HEAD without
// the body and its Content-Type.
string_response error_response(const request& req, const failure& f) {
  error_answer answer = error_answer_for(f);
  auto res = make_response(req, static_cast<bhttp::status>(answer.status));
  bool head = req.method() == bhttp::verb::head;
  for (auto& [name, value] : answer.headers) {
    if (head && name == "Content-Type") continue;
    res.set(name, value);
  }
  if (!head) res.body() = std::move(answer.body);
  res.content_length(res.body().size());
  return res;
}

void finish(string_response& res, bool head_request) {
  if (head_request) {
    res.body().clear();
    res.content_length(0);
  } else {
    res.content_length(res.body().size());
  }
}

std::optional<std::string> header(const request& req, std::string_view name) {
  auto it = req.find(name);
  if (it == req.end()) return std::nullopt;
  return std::string(it->value());
}

protocol_headers protocol_headers_of(const request& req) {
  protocol_headers h;
  h.content_type = header(req, "Content-Type");
  h.stream_ttl = header(req, "Stream-TTL");
  h.stream_expires_at = header(req, "Stream-Expires-At");
  h.stream_closed = header(req, "Stream-Closed");
  h.stream_seq = header(req, "Stream-Seq");
  h.producer_id = header(req, "Producer-Id");
  h.producer_epoch = header(req, "Producer-Epoch");
  h.producer_seq = header(req, "Producer-Seq");
  h.forked_from = header(req, "Stream-Forked-From");
  h.fork_offset = header(req, "Stream-Fork-Offset");
  h.fork_sub_offset = header(req, "Stream-Fork-Sub-Offset");
  return h;
}

// FNV-1a: a stable hash (std::hash may change between builds), for ETags of filtered reads.
std::uint64_t fnv1a64(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

failure stream_not_found() {
  return make_failure(failure_kind::not_found, "stream_not_found", "no stream exists at this path");
}

failure stream_gone() {
  return make_failure(failure_kind::gone, "stream_deleted",
                      "the stream was deleted; only its forks still read its data");
}

// Runs an engine operation that completes through a callback on another thread, resuming the
// calling coroutine on its own executor. Deliberately not a coroutine itself: g++ 12 relocates
// by-value closure parameters of coroutines bitwise, which corrupts captured strings.
template <class Result, class Start>
awaitable<Result> await_engine(Start start) {
  return asio::async_initiate<decltype(use_awaitable), void(Result)>(
      [start = std::move(start)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        auto ex = asio::get_associated_executor(*h);
        auto work = std::make_shared<asio::executor_work_guard<decltype(ex)>>(ex);
        start([h, work](Result r) mutable {
          auto ex = work->get_executor();
          asio::post(ex, [h, work, r = std::move(r)]() mutable {
            (*h)(std::move(r));
            work->reset();
          });
        });
      },
      use_awaitable);
}

// g++ 12 destroys temporaries in a co_await operand twice: every co_await below names its
// non-trivial operands first.
// `closing`: the server is shutting down, so this answer is the connection's last and says so.
// Most answers fit in the socket's send buffer: they are written at once (the socket is
// non-blocking from its accept on), without a round through the scheduler; only what the socket
// does not take waits for it, with the write timeout.
awaitable<bool> write_response(beast::tcp_stream& stream, string_response& res, bool closing) {
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

enum class write_outcome { written, stalled, failed };

// Writes `buffers` whole, in as many writes as the socket takes. A client whose socket accepts
// no byte for `stall` is stalled: the stream's timeout then closes the socket.
template <class Buffers>
awaitable<write_outcome> write_all(beast::tcp_stream& stream, Buffers buffers,
                                   std::chrono::milliseconds stall) {
  beast::buffers_suffix<Buffers> rest(buffers);
  while (beast::buffer_bytes(rest) > 0) {
    // Per write, not per chunk: a slow reader that keeps taking bytes only lags.
    stream.expires_after(stall);
    auto [ec, n] = co_await stream.async_write_some(rest, tuple_awaitable);
    if (ec == beast::error::timeout) co_return write_outcome::stalled;
    if (ec) co_return write_outcome::failed;
    rest.consume(n);
  }
  co_return write_outcome::written;
}

// `head` then `tail` (either may be empty, not both) as one chunk of a chunked response.
auto sse_chunk(const std::array<asio::const_buffer, 2>& parts) {
  BOOST_ASSERT(parts[0].size() + parts[1].size() > 0);  // an empty chunk would end the response
  return bhttp::make_chunk(parts);
}

awaitable<write_outcome> write_sse_chunk(beast::tcp_stream& stream, asio::const_buffer head,
                                         asio::const_buffer tail, std::chrono::milliseconds stall) {
  auto chunk = sse_chunk({head, tail});
  write_outcome w = co_await write_all(stream, chunk, stall);
  co_return w;
}

std::string peer_of(const beast::tcp_stream& stream) {
  beast::error_code ec;
  auto endpoint = stream.socket().remote_endpoint(ec);
  if (ec) return "unknown";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// The fields check_request_head() judges (views into `req`, valid while it lives).
http::request_head head_of(const request& req) {
  http::request_head h;
  h.version = req.version();
  for (auto [it, end] = req.equal_range(bhttp::field::transfer_encoding); it != end; ++it)
    h.transfer_encodings.push_back(it->value());
  for (auto [it, end] = req.equal_range(bhttp::field::host); it != end; ++it)
    h.hosts.push_back(it->value());
  return h;
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

// A caught-up SSE reader, parked: its coroutine waits on a timer while the task that wakes the
// stream's readers writes new messages straight to its socket (deliver_parked). Guarded by
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
  bool inline_ok = false;  // false for a filtered feed: only the coroutine applies filters
  // The reader's offset and whether its last control event said upToDate: moved on by the wake
  // task's writes, taken back by the coroutine when it wakes.
  std::uint64_t position = 0;
  bool at_tail = false;
  // What a partial write left of a chunk: the coroutine sends it before anything else.
  std::string unsent;
};

// One open connection, as a shutdown sees it. Shared by its session coroutine and the server's
// registry of connections; its members are used only on the connection's thread, except
// `live`, which the wake task uses under live_mu.
struct connection : live_subscriber, std::enable_shared_from_this<connection> {
  explicit connection(tcp::socket socket) : stream(std::move(socket)) {}
  // Its stream changed while it serves SSE: see deliver_parked.
  void on_change() override;
  beast::tcp_stream stream;
  // Waiting for the headers of its next request: a shutdown may close it at once.
  bool idle = true;
  // The timer of a live read waiting for a change: a shutdown cancels it to end the wait.
  std::weak_ptr<asio::steady_timer> wait;
  std::mutex live_mu;
  live_parking live;  // guarded by live_mu
  // What the request being served is for (/metrics counts its answer by it).
  route_class route = route_class::other;
};

enum class wait_outcome { changed, timed_out, stopping };
enum class admission_outcome { admitted, timed_out, stopping };

// Waits until the stream's state changes (new data, closure, deletion), the timeout passes or
// the server stops (`stopping` is set before the shutdown cancels conn.wait on this thread).
awaitable<wait_outcome> wait_for_change(connection& conn, const std::atomic<bool>& stopping,
                                        stream_record& stream, std::uint64_t position,
                                        std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex, timeout);
  conn.wait = timer;
  auto woken = std::make_shared<std::atomic<bool>>(false);
  // The waiter holds the timer weakly: only this coroutine's frame owns it, so a waiter left in
  // the record when the server stops cannot outlive the io_context that the timer belongs to.
  std::weak_ptr<asio::steady_timer> weak_timer = timer;
  std::uint64_t id = stream.add_waiter([weak_timer, woken, ex] {
    woken->store(true);
    asio::post(ex, [weak_timer] {
      if (auto t = weak_timer.lock()) t->cancel();
    });
  });
  // Deregisters on every exit, including destruction of this frame when the server stops.
  struct waiter_guard {
    stream_record& stream;
    std::uint64_t id;
    ~waiter_guard() { stream.remove_waiter(id); }
  } guard{stream, id};
  // Re-check after registering: a change published before the registration is seen here, one
  // published after it wakes the timer (both run on this thread, in order).
  published_state st = stream.state();
  if (st.tail > position || st.closed || st.lifecycle != stream_lifecycle::live) {
    co_return wait_outcome::changed;
  }
  // Likewise for a shutdown: one that began before conn.wait was set is seen here, one that
  // begins after it cancels the timer.
  if (stopping) co_return wait_outcome::stopping;
  co_await timer->async_wait(tuple_awaitable);
  if (woken->load()) co_return wait_outcome::changed;
  co_return stopping ? wait_outcome::stopping : wait_outcome::timed_out;
}

// The control event after data up to `at`.
std::string sse_control_frame(const stream_config& c,
                              const std::optional<std::string>& client_cursor, std::uint64_t at,
                              bool up_to_date, bool closed) {
  sse_control ctl;
  ctl.next_offset = format_offset({c.offset_prefix, at});
  if (!closed) {
    ctl.cursor = response_cursor(client_cursor, std::chrono::system_clock::now(),
                                 random_cursor_jitter_seconds());
  }
  ctl.up_to_date = up_to_date || closed;
  ctl.closed = closed;
  std::string out;
  append_sse_control_event(out, ctl);
  return out;
}

// ---- parked SSE readers ----------------------------------------------------------------------
//
// Fan-out to thousands of caught-up SSE readers of one stream (issue 7, target (d)): waking each
// reader's coroutine for every commit costs a thread hop, a timer cancel, a coroutine resume and
// a new timer and waiter per reader, more than the write itself. So a caught-up reader parks:
// its coroutine waits on its heartbeat timer, and the task that wakes the stream's readers after
// a commit (on the server's wake thread, see server::run) writes the new data event and control
// event straight to each parked reader's socket, without blocking. The coroutine is woken only for
// what that task does not do: a socket that does not take the whole chunk (the rest is left in
// live_parking::unsent), a closed, deleted or replaced stream, an offset the tail cache no longer
// holds, a filtered change feed, the heartbeat, the shutdown.

// Set while the wake thread runs the engine's wake task; elsewhere (the writer thread, tests
// without a server) a wake-up only wakes the coroutine.
thread_local bool t_wake_task = false;

// The data event for (after, upto] of one stream, encoded once per wake task for all the parked
// readers at that offset whose chunk spans several commits (one commit's event is shared by the
// published batch already).
struct event_cache_entry {
  const stream_record* record = nullptr;
  std::uint64_t after = 0;
  std::uint64_t upto = 0;
  sse_mode mode = sse_mode::json;
  std::string event;
};
thread_local event_cache_entry t_event_cache;

struct wake_task_scope {
  wake_task_scope() { t_wake_task = true; }
  ~wake_task_scope() {
    t_wake_task = false;
    t_event_cache = {};
  }
  wake_task_scope(const wake_task_scope&) = delete;
  wake_task_scope& operator=(const wake_task_scope&) = delete;
};

const std::string& data_event_of(const stream_record& record, const read_chunk& chunk) {
  sse_mode mode = record.config().sse;
  if (chunk.shared) return chunk.shared->sse_data_event(mode);
  event_cache_entry& e = t_event_cache;
  if (e.record != &record || e.after != chunk.after || e.upto != chunk.upto() || e.mode != mode) {
    e.record = &record;
    e.after = chunk.after;
    e.upto = chunk.upto();
    e.mode = mode;
    e.event.clear();
    append_sse_data_event(e.event, mode, chunk.messages);
  }
  return e.event;
}

// Writes what the stream published after a parked reader's offset straight to its socket, one
// chunk per write, while the socket takes each whole. True when the reader is at the tail again;
// false when the coroutine must take over. Holds conn.live_mu.
bool deliver_parked(connection& conn) {
  live_parking& parking = conn.live;
  // Writing here must never block the wake task (accepted sockets are made non-blocking).
  if (!parking.inline_ok || !conn.stream.socket().non_blocking()) return false;
  stream_record& record = *parking.record;
  const stream_config& c = record.config();
  for (;;) {
    published_state st = record.state();
    if (st.lifecycle != stream_lifecycle::live || st.closed) return false;
    if (st.tail <= parking.position) return true;
    std::optional<read_chunk> chunk = parking.engine->read_in_memory(record, parking.position);
    if (!chunk || chunk->messages.empty()) return false;
    const std::string& data = data_event_of(record, *chunk);
    published_state now = record.state();
    if (now.closed) return false;  // the closing control event is the coroutine's to write
    std::uint64_t upto = chunk->upto();
    bool at_tail = upto >= now.tail;
    std::string ctl = sse_control_frame(c, *parking.client_cursor, upto, at_tail, false);
    auto frame = sse_chunk({asio::buffer(data), asio::buffer(ctl)});
    // One sendmsg: the socket is non-blocking, so a full socket answers would_block at once.
    beast::error_code ec;
    std::size_t n = conn.stream.socket().send(frame, 0, ec);
    // Full or failed: nothing of this chunk went out; the coroutine's own write waits for room
    // (with its stall timeout) or meets the error.
    if (ec || n == 0) return false;
    parking.position = upto;
    parking.at_tail = at_tail;
    if (n == beast::buffer_bytes(frame)) continue;
    beast::buffers_suffix<decltype(frame)> rest(frame);
    rest.consume(n);
    parking.unsent = beast::buffers_to_string(rest);
    return false;
  }
}

void connection::on_change() {
  std::lock_guard lock(live_mu);
  if (!live.parked) return;  // awake: it checks the state before it parks again
  if (t_wake_task && deliver_parked(*this)) return;
  live.parked = false;
  asio::post(stream.get_executor(), [weak = weak_from_this()] {
    if (auto c = weak.lock()) {
      if (auto t = c->wait.lock()) t->cancel();
    }
  });
}

// Parks a caught-up SSE reader at `position` until its coroutine is needed (see above), the
// timeout passes or the server stops. On return `position` and `at_tail` are where the wake
// task's writes left the reader, and `unsent` what the coroutine must write first.
awaitable<wait_outcome> park_live_reader(connection& conn, const std::atomic<bool>& stopping,
                                         std::uint64_t& position, bool& at_tail,
                                         std::string& unsent, std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex, timeout);
  conn.wait = timer;
  stream_record* record = nullptr;
  {
    std::lock_guard lock(conn.live_mu);
    conn.live.parked = true;
    conn.live.position = position;
    conn.live.at_tail = at_tail;
    record = conn.live.record;
    if (!conn.live.subscription) conn.live.subscription = record->subscribe(conn.weak_from_this());
  }
  auto unpark = [&] {
    std::lock_guard lock(conn.live_mu);
    conn.live.parked = false;
    position = conn.live.position;
    at_tail = conn.live.at_tail;
    unsent = std::move(conn.live.unsent);
    conn.live.unsent.clear();
  };
  // Checked after parking: a change published before it is seen here, one published after it
  // finds the reader parked.
  published_state st = record->state();
  if (st.tail > position || st.closed || st.lifecycle != stream_lifecycle::live) {
    unpark();
    co_return wait_outcome::changed;
  }
  if (stopping) {
    unpark();
    co_return wait_outcome::stopping;
  }
  auto [ec] = co_await timer->async_wait(tuple_awaitable);
  unpark();
  if (stopping) co_return wait_outcome::stopping;
  co_return ec ? wait_outcome::changed : wait_outcome::timed_out;
}

// Ends a reader's parking when its SSE response ends: no wake task writes for it afterwards.
struct parking_guard {
  connection& conn;
  ~parking_guard() {
    std::lock_guard lock(conn.live_mu);
    live_parking& parking = conn.live;
    parking.parked = false;
    if (parking.subscription && parking.record) parking.record->unsubscribe(*parking.subscription);
    parking.subscription.reset();
    parking.record = nullptr;
  }
};

}  // namespace

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
  // Every open connection, for the shutdown. Declared before ioc: coroutine frames destroyed
  // with the io_context still deregister here.
  std::mutex connections_mu;
  std::unordered_set<std::shared_ptr<connection>> connections;  // guarded by connections_mu
  // Connections being served (counted at accept, before their coroutine registers above), and
  // connections past the limit being answered; compared with options.max_connections and
  // k_overflow_connections by the accept loop.
  std::atomic<std::size_t> served_connections{0};
  std::atomic<std::size_t> overflow_connections{0};
  // Declared before ioc, like connections: frames destroyed with it withdraw their tickets.
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
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
  std::mutex keep_running_mu;
  tcp::acceptor acceptor;
  std::atomic<bool> stopping{false};
  server_metrics metrics;

  // Refusal counts since the last log line; used by the accept loop only.
  std::size_t refused_since_log = 0;
  std::size_t dropped_since_log = 0;
  std::chrono::steady_clock::time_point last_refusal_log{};

  asio::io_context& next_context() { return *iocs[next_ioc++ % iocs.size()]; }
  // Lets each thread's run() return once its io_context has no more work.
  void release_threads() {
    std::lock_guard lock(keep_running_mu);
    keep_running.clear();
  }
  awaitable<void> listen();
  awaitable<void> session(tcp::socket socket);
  // A connection past max_connections: into the reserve, or closed at once.
  void refuse(tcp::socket socket);
  // Reads the request of a connection in the reserve; answers /health and /ready, and 503
  // too_many_connections to anything else; closes.
  awaitable<void> answer_over_limit(tcp::socket socket);
  string_response health_response(const request& req, std::string_view path);
  // The shutdown: runs on the io_context once stop() was called.
  awaitable<void> drain();
  std::size_t open_connections();
  // Until no connection is open or the deadline passes.
  awaitable<void> wait_for_connections(std::chrono::steady_clock::time_point deadline);
  awaitable<bool> dispatch(request& req, connection& conn);
  awaitable<bool> dispatch_session_api(request& req, connection& conn, const std::string& path,
                                       const boost::urls::url_view& url);
  // Counts the answer for /metrics (by conn.route) and writes it.
  awaitable<bool> respond(connection& conn, string_response& res) {
    metrics.count_response(conn.route, res.result_int());
    return write_response(conn.stream, res, stopping);
  }
  // GET /metrics: the Prometheus text exposition.
  awaitable<string_response> metrics_response(const request& req);

  awaitable<string_response> handle_put(request& req, const std::string& path);
  awaitable<string_response> handle_post(request& req, const std::string& path);
  awaitable<string_response> handle_delete(request& req, const std::string& path);
  string_response handle_head(request& req, const std::string& path);
  // `filter` (the change feed's) drops non-matching messages; offsets stay those of the stream.
  awaitable<bool> handle_get(request& req, connection& conn, const std::string& path,
                             const boost::urls::url_view& url,
                             const change_filter* filter = nullptr);

  awaitable<string_response> catch_up_response(request& req, connection& conn,
                                               const std::shared_ptr<stream_record>& stream,
                                               std::uint64_t position,
                                               const std::optional<std::string>& cursor,
                                               const change_filter* filter);
  awaitable<bool> serve_sse(request& req, connection& conn,
                            const std::shared_ptr<stream_record>& record, std::uint64_t position,
                            const std::optional<std::string>& client_cursor,
                            const change_filter* filter);
  // Every catch-up read: from memory at once when the tail cache serves it, otherwise through
  // the admission and the reader pool. Fails with 503 catch_up_busy after waiting
  // options.catch_up_wait_timeout, or server_stopping when a shutdown ends the wait.
  awaitable<read_result> read_admitted(connection& conn,
                                       const std::shared_ptr<stream_record>& record,
                                       std::uint64_t position);
  // Waits for a catch-up slot; on `admitted` the caller owns one and must release it.
  awaitable<admission_outcome> admit(connection& conn);

  // The record at `path` if it is live; otherwise an error (expired streams are reported gone
  // and handed to the writer to remove).
  result<std::shared_ptr<stream_record>> live_stream(const std::string& path);
  std::string location_for(const request& req) const;
};

// ---- listener and connections ------------------------------------------------------------

void log_connection_exception(std::exception_ptr e) {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    spdlog::error("connection ended by an exception: {}", ex.what());
  }
}

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
    // Small answers (a 204, one SSE event) go out at once instead of waiting for the
    // previous segment's ACK (Nagle's algorithm with delayed ACKs adds up to 40 ms).
    beast::error_code nodelay_ec;
    socket.set_option(tcp::no_delay(true), nodelay_ec);
    // Non-blocking for write_response()'s direct writes (asynchronous operations do not care).
    socket.non_blocking(true, nodelay_ec);
    if (served_connections.load() >= options.max_connections) {
      refuse(std::move(socket));
      continue;
    }
    ++served_connections;
    asio::co_spawn(socket.get_executor(), session(std::move(socket)), log_connection_exception);
  }
}

void server::impl::refuse(tcp::socket socket) {
  if (overflow_connections.load() < k_overflow_connections) {
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

awaitable<void> server::impl::session(tcp::socket socket) {
  auto conn = std::make_shared<connection>(std::move(socket));
  {
    std::lock_guard lock(connections_mu);
    connections.insert(conn);
  }
  struct registration {
    impl& owner;
    std::shared_ptr<connection> conn;
    ~registration() {
      {
        std::lock_guard lock(owner.connections_mu);
        owner.connections.erase(conn);
      }
      --owner.served_connections;
    }
  } registered{*this, conn};
  beast::tcp_stream& stream = conn->stream;
  beast::flat_buffer buffer;
  for (;;) {
    // Checked on the connection's thread right before the read starts: a shutdown that began
    // earlier ends the connection here, one that begins later cancels the read (drain()).
    if (stopping) break;
    conn->idle = true;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
    parser.body_limit(options.max_body_bytes);
    stream.expires_after(options.idle_timeout);
    auto [ec, n] = co_await bhttp::async_read_header(stream, buffer, parser, tuple_awaitable);
    conn->idle = false;
    if (ec == bhttp::error::body_limit) {
      // Beast refuses a declared Content-Length over the limit while reading the headers: the
      // body is never read.
      request dummy;
      dummy.version(11);
      auto res =
          error_response(dummy, make_failure(failure_kind::too_large, "body_too_large",
                                             "the request body is larger than the limit of " +
                                                 std::to_string(options.max_body_bytes) +
                                                 " bytes (--max-body-bytes)"));
      res.keep_alive(false);
      stream.expires_after(k_write_timeout);
      metrics.count_response(route_class::other, res.result_int());
      co_await bhttp::async_write(stream, res, tuple_awaitable);
      break;
    }
    if (ec) {
      if (ec == bhttp::error::header_limit) {
        request dummy;
        dummy.version(11);
        auto res = error_response(
            dummy, make_failure(failure_kind::headers_too_large, "headers_too_large",
                                "request headers exceed " +
                                    std::to_string(options.max_header_bytes) + " bytes"));
        res.keep_alive(false);
        stream.expires_after(k_write_timeout);
        metrics.count_response(route_class::other, res.result_int());
        co_await bhttp::async_write(stream, res, tuple_awaitable);
      } else if (ec != bhttp::error::end_of_stream && ec != asio::error::eof &&
                 ec != beast::error::timeout && ec != asio::error::connection_reset &&
                 ec != asio::error::operation_aborted) {
        request dummy;
        dummy.version(11);
        auto res =
            error_response(dummy, make_failure(failure_kind::invalid, "malformed_request",
                                               "the HTTP request is malformed: " + ec.message()));
        res.keep_alive(false);
        stream.expires_after(k_write_timeout);
        metrics.count_response(route_class::other, res.result_int());
        co_await bhttp::async_write(stream, res, tuple_awaitable);
      }
      break;
    }
    request& head = parser.get();
    if (auto refused = check_request_head(head_of(head))) {
      // Its body's length is unknown, or its Host cannot be trusted: nothing more is read.
      auto res = error_response(head, *refused);
      res.keep_alive(false);
      metrics.count_response(route_class::other, res.result_int());
      stream.expires_after(k_write_timeout);
      co_await bhttp::async_write(stream, res, tuple_awaitable);
      break;
    }
    if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> cont{bhttp::status::continue_, head.version()};
      stream.expires_after(k_write_timeout);
      auto [wec, wn] = co_await bhttp::async_write(stream, cont, tuple_awaitable);
      if (wec) break;
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
      stream.expires_after(options.request_timeout);
      auto [ec2, rn] = co_await bhttp::async_read(stream, buffer, parser, tuple_awaitable);
      rec = ec2;
    }
    if (rec) {
      if (rec == bhttp::error::body_limit) {
        auto res = error_response(head, make_failure(failure_kind::too_large, "body_too_large",
                                                     "the request body exceeds the limit of " +
                                                         std::to_string(options.max_body_bytes) +
                                                         " bytes (--max-body-bytes)"));
        res.keep_alive(false);
        stream.expires_after(k_write_timeout);
        metrics.count_response(route_class::other, res.result_int());
        co_await bhttp::async_write(stream, res, tuple_awaitable);
      } else if (rec != asio::error::eof && rec != bhttp::error::end_of_stream &&
                 rec != beast::error::timeout && rec != asio::error::connection_reset &&
                 rec != bhttp::error::partial_message) {
        auto res = error_response(
            head, make_failure(failure_kind::invalid, "malformed_request",
                               "the HTTP request body is malformed: " + rec.message()));
        res.keep_alive(false);
        stream.expires_after(k_write_timeout);
        metrics.count_response(route_class::other, res.result_int());
        co_await bhttp::async_write(stream, res, tuple_awaitable);
      }
      break;
    }
    request req = parser.release();
    bool keep_alive = co_await dispatch(req, *conn);
    if (!keep_alive || stopping) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

awaitable<bool> server::impl::dispatch(request& req, connection& conn) {
  string_response res;
  auto url = boost::urls::parse_origin_form(req.target());
  if (!url) {
    res = error_response(req, make_failure(failure_kind::invalid, "invalid_target",
                                           "the request target is not a valid URL path and query"));
    co_return co_await respond(conn, res);
  }
  std::string path = url->path();
  conn.route = classify_route(path);

  if (req.method() == bhttp::verb::options) {
    res = make_response(req, bhttp::status::no_content);
    res.set(bhttp::field::access_control_allow_methods, k_cors_methods);
    res.set(bhttp::field::access_control_allow_headers, k_allow_headers);
    res.set(bhttp::field::access_control_max_age, "86400");
    finish(res, true);
    co_return co_await respond(conn, res);
  }
  bool head = req.method() == bhttp::verb::head;
  if (path == "/health" || path == "/ready") {
    bool get = req.method() == bhttp::verb::get || head;
    if (!get) {
      res = error_response(req, method_not_allowed("GET, HEAD", "use GET on " + path));
      co_return co_await respond(conn, res);
    }
    res = health_response(req, path);
    co_return co_await respond(conn, res);
  }
  if (path == "/metrics") {
    if (req.method() != bhttp::verb::get && !head) {
      res = error_response(req, method_not_allowed("GET, HEAD", "use GET on /metrics"));
      co_return co_await respond(conn, res);
    }
    res = co_await metrics_response(req);
    co_return co_await respond(conn, res);
  }
  if (is_dashboard_path(path) || path == k_streams_list_path) {
    // The dashboard's page and files, and the stream list its stream browser reads.
    std::vector<query_param> params;
    for (auto p : url->params())
      params.push_back({p.key, p.value, p.has_value});
    std::string method(req.method_string());
    api_response answer = path == k_streams_list_path
                              ? streams_list_response(method, params, engine, now_ms())
                              : dashboard_response(method, path, header(req, "If-None-Match"));
    res = make_response(req, static_cast<bhttp::status>(answer.status));
    for (auto& [name, value] : answer.headers)
      res.set(name, value);
    res.body() = std::move(answer.body);
    finish(res, head);
    co_return co_await respond(conn, res);
  }
  if (auto events = session_events_stream(path)) {
    // A session's event stream: readable with every read mode, written only by ordo.
    if (!engine.find(*events)) {
      res = error_response(req,
                           make_failure(failure_kind::not_found, "session_not_found",
                                        "no session '" + path.substr(13, path.size() - 20) + "'"));
      co_return co_await respond(conn, res);
    }
    if (req.method() == bhttp::verb::get) co_return co_await handle_get(req, conn, *events, *url);
    if (head) {
      res = handle_head(req, *events);
      co_return co_await respond(conn, res);
    }
    res = error_response(req, make_failure(failure_kind::forbidden, "managed_stream",
                                           "a session's event stream is written by ordo as the "
                                           "session changes; read it with GET"));
    co_return co_await respond(conn, res);
  }
  if (path == "/v1/changes") {
    // The change feed: readable with every read mode and filters, written only by ordo.
    std::string feed(sessions::session_service::k_changes_stream_path);
    if (req.method() == bhttp::verb::get) {
      std::vector<query_param> params;
      for (auto p : url->params())
        params.push_back({p.key, p.value, p.has_value});
      auto filter = change_filter_from_query(params);
      if (!filter) {
        res = error_response(req, filter.error());
        co_return co_await respond(conn, res);
      }
      co_return co_await handle_get(req, conn, feed, *url, &*filter);
    }
    if (head) {
      res = handle_head(req, feed);
      co_return co_await respond(conn, res);
    }
    res = error_response(req, make_failure(failure_kind::forbidden, "managed_stream",
                                           "the change feed is written by ordo; read it with GET"));
    co_return co_await respond(conn, res);
  }
  if (is_session_api_path(path)) co_return co_await dispatch_session_api(req, conn, path, *url);
  if (path.rfind(k_stream_route_prefix, 0) != 0) {
    res = error_response(req, make_failure(failure_kind::not_found, "route_not_found",
                                           "no resource at '" + path + "'; streams live under " +
                                               std::string(k_stream_route_prefix)));
    co_return co_await respond(conn, res);
  }
  std::string stream_path = path.substr(k_stream_route_prefix.size());
  if (auto s = validate_stream_path(stream_path); !s) {
    res = error_response(req, s.error());
    co_return co_await respond(conn, res);
  }
  switch (req.method()) {
    case bhttp::verb::put:
      res = co_await handle_put(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::post:
      res = co_await handle_post(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::delete_:
      res = co_await handle_delete(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::head:
      res = handle_head(req, stream_path);
      co_return co_await respond(conn, res);
    case bhttp::verb::get:
      co_return co_await handle_get(req, conn, stream_path, *url);
    default: {
      res = error_response(
          req,
          method_not_allowed(k_stream_methods, "streams accept " + std::string(k_stream_methods)));
      co_return co_await respond(conn, res);
    }
  }
}

string_response server::impl::health_response(const request& req, std::string_view path) {
  bool ready = path == "/health" || engine.writable();
  auto res = make_response(req, ready ? bhttp::status::ok : bhttp::status::service_unavailable);
  res.set(bhttp::field::content_type, "application/json");
  res.set(bhttp::field::cache_control, "no-store");
  if (path == "/health") {
    res.body() = R"({"status":"ok"})";
  } else {
    res.body() =
        ready ? R"({"status":"ready","streams":)" + std::to_string(engine.stream_count()) + "}"
              : R"({"status":"unavailable","reason":")" + engine.write_refusal() + "\"}";
  }
  finish(res, req.method() == bhttp::verb::head);
  return res;
}

awaitable<string_response> server::impl::metrics_response(const request& req) {
  auto op = await_engine<result<sessions::session_counts>>(
      [this](auto done) { sessions.counts(std::move(done)); });
  result<sessions::session_counts> counts = co_await std::move(op);
  if (!counts) spdlog::warn("/metrics: counting sessions failed: {}", counts.error().message);
  metrics_scrape scrape{engine, metrics};
  scrape.open_connections = served_connections.load();
  scrape.catch_up_active = admission.active();
  scrape.catch_up_waiting = admission.waiting();
  if (counts) scrape.sessions = std::move(*counts);
  scrape.background = &sessions.background();
  auto res = make_response(req, bhttp::status::ok);
  res.set(bhttp::field::content_type, k_metrics_content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.body() = render_metrics(scrape);
  finish(res, req.method() == bhttp::verb::head);
  co_return res;
}

awaitable<bool> server::impl::dispatch_session_api(request& req, connection& conn,
                                                   const std::string& path,
                                                   const boost::urls::url_view& url) {
  auto api = std::make_shared<api_request>();
  api->method = std::string(req.method_string());
  api->path = path;
  for (auto p : url.params())
    api->query.push_back({p.key, p.value, p.has_value});
  api->header = [&req](std::string_view name) { return header(req, name); };
  api->body = std::move(req.body());
  auto op = await_engine<api_response>(
      [this, api](auto done) { handle_session_api(sessions, std::move(*api), done); });
  api_response answer = co_await std::move(op);
  string_response res = make_response(req, static_cast<bhttp::status>(answer.status));
  for (auto& [name, value] : answer.headers)
    res.set(name, value);
  res.body() = std::move(answer.body);
  finish(res, req.method() == bhttp::verb::head);
  co_return co_await respond(conn, res);
}

result<std::shared_ptr<stream_record>> server::impl::live_stream(const std::string& path) {
  auto record = engine.find(path);
  if (!record) return stream_not_found();
  published_state st = record->state();
  if (st.lifecycle == stream_lifecycle::soft_deleted) return stream_gone();
  if (st.lifecycle == stream_lifecycle::removed) return stream_not_found();
  if (record->expired_at(now_ms())) {
    engine.expire_soon(record);
    return stream_not_found();
  }
  return record;
}

std::string server::impl::location_for(const request& req) const {
  auto host = req[bhttp::field::host];
  std::string authority =
      host.empty() ? options.host + ":" + std::to_string(options.port) : std::string(host);
  return "http://" + authority + std::string(req.target().substr(0, req.target().find('?')));
}

// ---- PUT: create ---------------------------------------------------------------------------

awaitable<string_response> server::impl::handle_put(request& req, const std::string& path) {
  auto parsed = parse_create(protocol_headers_of(req), std::move(req.body()), engine);
  if (!parsed) co_return error_response(req, parsed.error());
  parsed->path = path;
  parsed->now_ms = now_ms();
  // Closures built inside coroutines capture only pointers (see await_engine).
  auto c = std::make_shared<create_request>(std::move(*parsed));
  auto op =
      await_engine<create_result>([this, c](auto done) { engine.create(std::move(*c), done); });
  create_result r = co_await std::move(op);
  if (r.status != create_status::created && r.status != create_status::exists) {
    co_return error_response(req, r.error);
  }
  auto res = make_response(
      req, r.status == create_status::created ? bhttp::status::created : bhttp::status::ok);
  if (r.status == create_status::created) res.set(bhttp::field::location, location_for(req));
  res.set(bhttp::field::content_type, r.stream.content_type);
  res.set("Stream-Next-Offset", format_offset({r.stream.offset_prefix, r.stream.tail}));
  if (r.stream.closed) res.set("Stream-Closed", "true");
  res.set(bhttp::field::cache_control, "no-store");
  finish(res, false);
  co_return res;
}

// ---- POST: append / close --------------------------------------------------------------------

awaitable<string_response> server::impl::handle_post(request& req, const std::string& path) {
  auto record = live_stream(path);
  if (!record) co_return error_response(req, record.error());
  auto parsed = parse_append(protocol_headers_of(req), std::move(req.body()), (*record)->config());
  if (!parsed) co_return error_response(req, parsed.error());
  parsed->path = path;
  parsed->now_ms = now_ms();
  bool has_producer = parsed->producer.has_value();
  auto a = std::make_shared<append_request>(std::move(*parsed));
  auto op =
      await_engine<append_result>([this, a](auto done) { engine.append(std::move(*a), done); });
  append_result r = co_await std::move(op);

  auto with_stream_headers = [&](string_response& res) {
    res.set("Stream-Next-Offset", format_offset({r.offset_prefix, r.tail}));
    if (r.closed) res.set("Stream-Closed", "true");
  };
  auto with_producer_headers = [&](string_response& res) {
    if (!has_producer) return;
    res.set("Producer-Epoch", std::to_string(r.producer_epoch));
    res.set("Producer-Seq", std::to_string(r.producer_seq));
  };
  string_response res;
  switch (r.status) {
    case append_status::appended:
      res = make_response(req, has_producer ? bhttp::status::ok : bhttp::status::no_content);
      with_stream_headers(res);
      with_producer_headers(res);
      break;
    case append_status::closed:
    case append_status::duplicate:
      res = make_response(req, bhttp::status::no_content);
      with_stream_headers(res);
      with_producer_headers(res);
      break;
    case append_status::stream_closed:
      res = error_response(req, r.error);
      with_stream_headers(res);
      res.set("Stream-Closed", "true");
      break;
    case append_status::stale_epoch:
      res = error_response(req, r.error);
      res.set("Producer-Epoch", std::to_string(r.producer_epoch));
      break;
    case append_status::producer_seq_gap:
      res = error_response(req, r.error);
      res.set("Producer-Expected-Seq", std::to_string(r.expected_seq));
      res.set("Producer-Received-Seq", std::to_string(r.received_seq));
      break;
    default:
      res = error_response(req, r.error);
      break;
  }
  finish(res, false);
  co_return res;
}

// ---- DELETE ----------------------------------------------------------------------------------

awaitable<string_response> server::impl::handle_delete(request& req, const std::string& path) {
  if (auto record = engine.find(path); record && record->expired_at(now_ms()) &&
                                       record->state().lifecycle == stream_lifecycle::live) {
    engine.expire_soon(record);
    co_return error_response(req, stream_not_found());
  }
  auto op = await_engine<delete_result>([this, &path](auto done) { engine.remove(path, done); });
  delete_result r = co_await std::move(op);
  if (r.status != delete_status::deleted) co_return error_response(req, r.error);
  auto res = make_response(req, bhttp::status::no_content);
  finish(res, false);
  co_return res;
}

// ---- HEAD ------------------------------------------------------------------------------------

string_response server::impl::handle_head(request& req, const std::string& path) {
  auto record = live_stream(path);
  if (!record) return error_response(req, record.error());
  const stream_config& c = (*record)->config();
  published_state st = (*record)->state();
  auto res = make_response(req, bhttp::status::ok);
  res.set(bhttp::field::content_type, c.content_type);
  res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
  if (c.ttl_seconds) res.set("Stream-TTL", std::to_string(*c.ttl_seconds));
  if (c.expires_at_ms) res.set("Stream-Expires-At", format_rfc3339_ms(*c.expires_at_ms));
  if (st.closed) res.set("Stream-Closed", "true");
  res.set(bhttp::field::cache_control, "no-store");
  finish(res, true);
  return res;
}

// ---- GET: catch-up, long-poll, SSE ---------------------------------------------------------

awaitable<bool> server::impl::handle_get(request& req, connection& conn, const std::string& path,
                                         const boost::urls::url_view& url,
                                         const change_filter* filter) {
  string_response res;
  auto record_result = live_stream(path);
  if (!record_result) {
    res = error_response(req, record_result.error());
    co_return co_await respond(conn, res);
  }
  std::shared_ptr<stream_record> record = *record_result;

  std::vector<query_param> params;
  for (auto p : url.params())
    params.push_back({p.key, p.value, p.has_value});
  auto query = parse_read_query(params);
  if (!query) {
    res = error_response(req, query.error());
    co_return co_await respond(conn, res);
  }

  const stream_config& c = record->config();
  record->touch(now_ms());  // a read resets a sliding TTL
  published_state st = record->state();

  bool now_offset = query->offset && query->offset->kind == offset_request_kind::now;
  std::uint64_t position = 0;
  if (now_offset) {
    position = st.tail;
  } else if (query->offset && query->offset->kind == offset_request_kind::at) {
    const stream_offset& at = query->offset->at;
    if (at.prefix == c.offset_prefix && at.position > st.tail) {
      // A snapshot reads the database, which can show a commit a moment before the writer
      // publishes it: give such an offset a short grace before calling it beyond the tail.
      auto deadline = std::chrono::steady_clock::now() + k_publish_grace;
      while (record->state().tail < at.position &&
             record->state().lifecycle == stream_lifecycle::live && !stopping) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        co_await wait_for_change(
            conn, stopping, *record, record->state().tail,
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
      }
      st = record->state();
      if (stopping && at.position > st.tail) {
        // The grace was cut short by a shutdown: the offset may well be valid, so not 410.
        res = error_response(req, make_failure(failure_kind::unavailable, "server_stopping",
                                               "the server is shutting down; retry the read"));
        co_return co_await respond(conn, res);
      }
    }
    if (at.prefix != c.offset_prefix || at.position > st.tail) {
      bool foreign = at.prefix != c.offset_prefix;
      {
        res = error_response(
            req, make_failure(
                     failure_kind::gone, foreign ? "offset_not_for_stream" : "offset_beyond_tail",
                     std::string(foreign ? "this offset was not issued for this stream (it "
                                           "comes from another database, or from an "
                                           "earlier stream at this path)"
                                         : "this offset is beyond the stream's tail (the "
                                           "database was restored from an older copy)") +
                         "; re-read the stream from offset -1"));
        co_return co_await respond(conn, res);
      }
    }
    position = at.position;
  }

  if (position < st.pruned_upto) {
    // Retention removed what this reader asks for: say so, never skip ahead silently.
    bool feed = path == sessions::session_service::k_changes_stream_path;
    failure f = make_failure(
        failure_kind::gone, "offset_pruned",
        "the events before offset " + format_offset({c.offset_prefix, st.pruned_upto}) +
            " were removed by retention; " +
            (feed ? "load GET /v1/changes/snapshot and follow the feed from its offset"
                  : "re-read from the oldest retained offset"));
    f.with("oldest_offset", "\"" + format_offset({c.offset_prefix, st.pruned_upto}) + "\"");
    if (feed) f.with("snapshot", "\"/v1/changes/snapshot\"");
    res = error_response(req, f);
    co_return co_await respond(conn, res);
  }

  std::optional<std::string> cursor;
  if (query->live != live_mode::none) {
    cursor = response_cursor(query->cursor, std::chrono::system_clock::now(),
                             random_cursor_jitter_seconds());
  }

  if (query->live == live_mode::sse) {
    co_return co_await serve_sse(req, conn, record, position, query->cursor, filter);
  }

  if (query->live == live_mode::none && now_offset) {
    res = make_response(req, bhttp::status::ok);
    res.set(bhttp::field::content_type, c.content_type);
    res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
    res.set("Stream-Up-To-Date", "true");
    if (st.closed) res.set("Stream-Closed", "true");
    res.set(bhttp::field::cache_control, "no-store");
    res.body() = c.payload == payload_mode::json ? "[]" : "";
    finish(res, false);
    co_return co_await respond(conn, res);
  }

  std::optional<gauge_hold> long_poll_gauge;
  if (query->live == live_mode::long_poll) long_poll_gauge.emplace(metrics.long_poll_readers);
  if (query->live == live_mode::long_poll && filter && filter->active()) {
    // Scan forward over events the filter drops, waiting at the tail, until one matches, the
    // stream closes or the timeout passes. The answer's offset covers everything scanned.
    auto deadline = std::chrono::steady_clock::now() + options.long_poll_timeout;
    for (;;) {
      st = record->state();
      if (st.lifecycle != stream_lifecycle::live) break;
      if (position < st.tail) {
        read_result r = co_await read_admitted(conn, record, position);
        if (!r.chunk || r.chunk->messages.empty()) break;
        bool any = std::any_of(r.chunk->messages.begin(), r.chunk->messages.end(),
                               [&](const message_ptr& m) { return filter->matches(*m); });
        if (any) break;
        position = r.chunk->upto();
        continue;
      }
      if (st.closed) break;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) break;
      auto waited = co_await wait_for_change(
          conn, stopping, *record, position,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
      // A shutdown answers like the timeout: what was scanned so far, or 204.
      if (waited == wait_outcome::stopping) break;
      if (std::chrono::steady_clock::now() >= deadline && record->state().tail <= position) break;
    }
    st = record->state();
  } else if (query->live == live_mode::long_poll && position >= st.tail) {
    if (!st.closed) {
      // A shutdown ends the wait early; the answer is then the timeout's 204. A wake-up with
      // nothing new (the round of a commit published before this wait began, delivered after
      // it) waits on: an early 204 would only send the client straight back.
      auto deadline = std::chrono::steady_clock::now() + options.long_poll_timeout;
      for (;;) {
        auto now = std::chrono::steady_clock::now();
        if (now >= deadline) break;
        auto waited = co_await wait_for_change(
            conn, stopping, *record, position,
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
        if (waited != wait_outcome::changed) break;
        st = record->state();
        if (st.tail > position || st.closed || st.lifecycle != stream_lifecycle::live) break;
      }
      st = record->state();
      if (st.lifecycle == stream_lifecycle::removed) {
        res = error_response(req, stream_not_found());
        co_return co_await respond(conn, res);
      }
      if (st.lifecycle == stream_lifecycle::soft_deleted) {
        res = error_response(req, stream_gone());
        co_return co_await respond(conn, res);
      }
    }
    if (position >= st.tail) {
      res = make_response(req, bhttp::status::no_content);
      res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
      res.set("Stream-Up-To-Date", "true");
      if (st.closed) {
        res.set("Stream-Closed", "true");
      } else {
        res.set("Stream-Cursor", *cursor);
      }
      res.set(bhttp::field::cache_control, "no-store");
      finish(res, true);
      co_return co_await respond(conn, res);
    }
  }
  if (query->live == live_mode::long_poll && position >= st.tail) {
    res = make_response(req, bhttp::status::no_content);
    res.set("Stream-Next-Offset", format_offset({c.offset_prefix, st.tail}));
    res.set("Stream-Up-To-Date", "true");
    if (st.closed) {
      res.set("Stream-Closed", "true");
    } else {
      res.set("Stream-Cursor", *cursor);
    }
    res.set(bhttp::field::cache_control, "no-store");
    finish(res, true);
    co_return co_await respond(conn, res);
  }
  res = co_await catch_up_response(req, conn, record, position, cursor, filter);
  co_return co_await respond(conn, res);
}

awaitable<string_response> server::impl::catch_up_response(
    request& req, connection& conn, const std::shared_ptr<stream_record>& record,
    std::uint64_t position, const std::optional<std::string>& cursor, const change_filter* filter) {
  const stream_config& c = record->config();
  read_result r = co_await read_admitted(conn, record, position);
  if (!r.chunk) co_return error_response(req, r.error);
  const read_chunk& chunk = *r.chunk;
  published_state st = record->state();
  std::uint64_t next = chunk.upto();
  bool up_to_date = next >= st.tail;
  bool closed = st.closed && up_to_date;

  bool filtered = filter && filter->active();
  std::string etag = "\"" + hex16(c.offset_prefix) + ":" + std::to_string(position) + ":" +
                     std::to_string(next) + (closed ? ":c" : "") +
                     (filtered ? ":f" + hex16(fnv1a64(filter->fingerprint())) : "") + "\"";
  auto if_none_match = req[bhttp::field::if_none_match];
  if (!if_none_match.empty() && if_none_match_matches(if_none_match, etag)) {
    auto res = make_response(req, bhttp::status::not_modified);
    res.set(bhttp::field::etag, etag);
    res.set("Stream-Next-Offset", format_offset({c.offset_prefix, next}));
    finish(res, true);
    co_return res;
  }

  auto res = make_response(req, bhttp::status::ok);
  res.set(bhttp::field::content_type, c.content_type);
  res.set("Stream-Next-Offset", format_offset({c.offset_prefix, next}));
  if (up_to_date) res.set("Stream-Up-To-Date", "true");
  if (closed) res.set("Stream-Closed", "true");
  if (cursor && !closed) res.set("Stream-Cursor", *cursor);
  res.set(bhttp::field::etag, etag);
  // A chunk that ends before the tail, or at the end of a closed stream, never changes; one
  // that reaches the tail of an open stream must be revalidated (its ETag makes that cheap).
  if (!up_to_date || closed) {
    std::int64_t max_age = k_immutable_max_age_seconds;
    if (c.ttl_seconds) max_age = std::min(max_age, *c.ttl_seconds);
    if (c.expires_at_ms)
      max_age = std::min(max_age, std::max<std::int64_t>(0, (*c.expires_at_ms - now_ms()) / 1000));
    res.set(bhttp::field::cache_control,
            "private, max-age=" + std::to_string(max_age) + ", stale-while-revalidate=300");
  } else {
    res.set(bhttp::field::cache_control, "no-cache");
  }
  if (filtered) {
    std::vector<message_ptr> kept;
    for (const auto& m : chunk.messages) {
      if (filter->matches(*m)) kept.push_back(m);
    }
    res.body() = encode_body(c.payload, kept);
  } else {
    res.body() =
        chunk.shared ? chunk.shared->body(c.payload) : encode_body(c.payload, chunk.messages);
  }
  finish(res, false);
  co_return res;
}

awaitable<admission_outcome> server::impl::admit(connection& conn) {
  auto ex = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(ex, options.catch_up_wait_timeout);
  auto admitted = std::make_shared<std::atomic<bool>>(false);
  // As in wait_for_change: the callback holds the timer weakly, only this frame owns it.
  std::weak_ptr<asio::steady_timer> weak_timer = timer;
  std::optional<catch_up_admission::ticket> ticket = admission.acquire([weak_timer, admitted, ex] {
    admitted->store(true);
    if (weak_timer.expired()) return;
    asio::post(ex, [weak_timer] {
      if (auto t = weak_timer.lock()) t->cancel();
    });
  });
  if (!ticket) co_return admission_outcome::admitted;
  metrics.catch_up_waits.add();
  // Settles the ticket on every exit, including destruction of this frame when the server stops:
  // withdrawn if still waiting, else the slot it was given goes back.
  struct ticket_guard {
    catch_up_admission& gate;
    catch_up_admission::ticket id;
    bool settled = false;
    ~ticket_guard() {
      if (!settled && !gate.cancel(id)) gate.release();
    }
  } guard{admission, *ticket};
  // A shutdown that began before conn.wait was set is seen here, a later one cancels the timer.
  conn.wait = timer;
  if (!stopping) co_await timer->async_wait(tuple_awaitable);
  guard.settled = true;
  if (admitted->load() || !admission.cancel(*ticket)) co_return admission_outcome::admitted;
  co_return stopping ? admission_outcome::stopping : admission_outcome::timed_out;
}

awaitable<read_result> server::impl::read_admitted(connection& conn,
                                                   const std::shared_ptr<stream_record>& record,
                                                   std::uint64_t position) {
  if (auto chunk = engine.read_in_memory(*record, position)) {
    co_return read_result{std::move(chunk), {}};
  }
  admission_outcome admitted = co_await admit(conn);
  if (admitted == admission_outcome::stopping) {
    co_return read_result{std::nullopt,
                          make_failure(failure_kind::unavailable, "server_stopping",
                                       "the server is shutting down; retry the read")};
  }
  if (admitted == admission_outcome::timed_out) {
    metrics.catch_up_refusals.add();
    co_return read_result{
        std::nullopt,
        make_failure(failure_kind::unavailable, "catch_up_busy",
                     "too many catch-up reads are in progress (--max-catch-up-reads=" +
                         std::to_string(options.max_catch_up_reads) + "); this one waited " +
                         std::to_string(options.catch_up_wait_timeout.count()) +
                         " ms; retry after Retry-After")};
  }
  struct slot {
    catch_up_admission& gate;
    ~slot() { gate.release(); }
  } held{admission};
  auto op = await_engine<read_result>(
      [this, record, position](auto done) { engine.read(record, position, done); });
  read_result r = co_await std::move(op);
  co_return r;
}

awaitable<bool> server::impl::serve_sse(request& req, connection& conn,
                                        const std::shared_ptr<stream_record>& record,
                                        std::uint64_t position,
                                        const std::optional<std::string>& client_cursor,
                                        const change_filter* filter) {
  beast::tcp_stream& stream = conn.stream;
  const stream_config& c = record->config();
  // The first chunk is read before the response starts, so a read that cannot be served (the
  // catch-up line is full, retention removed the data meanwhile) gets its own status and error
  // instead of an event stream that ends at once.
  std::optional<read_chunk> pending;
  if (position < record->state().tail) {
    read_result first = co_await read_admitted(conn, record, position);
    if (!first.chunk) {
      string_response res = error_response(req, first.error);
      co_return co_await respond(conn, res);
    }
    pending = std::move(first.chunk);
  }

  // A reader cut off for not draining is reset rather than closed, so the kernel drops what is
  // queued for it at once instead of keeping it for an orphaned socket. Undone before a clean
  // end, whose last bytes must not be dropped.
  beast::error_code ignored;
  stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
  std::string peer = peer_of(stream);
  {
    // In a block: the header's fields are freed once written, while the reader may stay for
    // hours (target (f), memory per idle SSE connection).
    bhttp::response<bhttp::empty_body> head{bhttp::status::ok, req.version()};
    add_common_headers(head);
    head.set(bhttp::field::content_type, "text/event-stream");
    head.set(bhttp::field::cache_control, "no-cache");
    head.set("X-Accel-Buffering", "no");
    if (c.sse == sse_mode::base64) head.set("Stream-SSE-Data-Encoding", "base64");
    head.keep_alive(false);
    head.chunked(true);
    bhttp::response_serializer<bhttp::empty_body> serializer{head};
    stream.expires_after(options.sse_write_timeout);
    auto [ec, n] = co_await bhttp::async_write_header(stream, serializer, tuple_awaitable);
    metrics.count_response(conn.route, 200);
    if (ec) co_return false;
  }
  gauge_hold reader_gauge(metrics.sse_readers);

  // The offset of the last control event written whole: where the client resumes.
  std::uint64_t delivered = position;
  bool ok = true;
  // Logs a reader cut off for not draining; true when the write went out whole.
  auto note_stall = [&](write_outcome w) {
    if (w == write_outcome::stalled) {
      metrics.slow_readers_reset.add();
      spdlog::warn(
          "sse reader stalled: its socket took no byte for {} ms (--sse-write-timeout); "
          "connection reset, it resumes from its last control event, offset {} (stream {}, "
          "peer {})",
          options.sse_write_timeout.count(), format_offset({c.offset_prefix, delivered}), c.path,
          peer);
    }
    return w == write_outcome::written;
  };
  auto write_frame = [&](asio::const_buffer data,
                         asio::const_buffer control_event) -> awaitable<bool> {
    write_outcome w =
        co_await write_sse_chunk(stream, data, control_event, options.sse_write_timeout);
    co_return note_stall(w);
  };
  auto write_text = [&](const std::string& text) -> awaitable<bool> {
    co_return co_await write_frame(asio::buffer(text), asio::const_buffer());
  };
  auto control = [&](std::uint64_t at, bool up_to_date, bool closed) {
    return sse_control_frame(c, client_cursor, at, up_to_date, closed);
  };
  {
    std::lock_guard lock(conn.live_mu);
    conn.live.record = record.get();
    conn.live.engine = &engine;
    conn.live.client_cursor = &client_cursor;
    conn.live.inline_ok = !(filter && filter->active());
  }
  parking_guard parking{conn};

  auto deadline = std::chrono::steady_clock::now() + options.sse_max_duration;
  bool announced_at_tail = false;
  bool shutting_down = false;
  std::optional<failure> read_failed;
  while (ok) {
    if (stopping) {
      shutting_down = true;
      break;
    }
    published_state st = record->state();
    if (st.lifecycle != stream_lifecycle::live) break;
    if (pending || position < st.tail) {
      if (!pending) {
        read_result r = co_await read_admitted(conn, record, position);
        if (!r.chunk) {
          if (stopping) {
            shutting_down = true;
          } else {
            read_failed = std::move(r.error);
          }
          break;
        }
        pending = std::move(r.chunk);
      }
      if (pending->messages.empty()) break;
      // The data event: one commit's, built once and shared by every reader at this offset, or
      // this reader's own. The chunk's messages are let go before the write: what waits on a
      // slow socket is the encoded event alone.
      std::shared_ptr<const published_batch> shared;
      std::string own;
      if (filter && filter->active()) {
        // Events the filter drops are skipped; the control event still moves the offset on.
        std::vector<message_ptr> kept;
        for (const auto& m : pending->messages) {
          if (filter->matches(*m)) kept.push_back(m);
        }
        if (!kept.empty()) append_sse_data_event(own, c.sse, kept);
      } else if (pending->shared) {
        shared = pending->shared;
      } else {
        append_sse_data_event(own, c.sse, pending->messages);
      }
      position = pending->upto();
      pending.reset();
      const std::string& data = shared ? shared->sse_data_event(c.sse) : own;
      published_state now_st = record->state();
      bool at_tail = position >= now_st.tail;
      bool closed = now_st.closed && at_tail;
      std::string ctl = control(position, at_tail, closed);
      ok = co_await write_frame(asio::buffer(data), asio::buffer(ctl));
      if (ok) delivered = position;
      announced_at_tail = at_tail;
      if (closed) break;
      continue;
    }
    if (st.closed) {
      std::string frame = control(position, true, true);
      ok = co_await write_text(frame);
      break;
    }
    if (!announced_at_tail) {
      std::string frame = control(position, true, false);
      ok = co_await write_text(frame);
      announced_at_tail = true;
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    auto wait = std::min<std::chrono::milliseconds>(
        options.sse_heartbeat_interval,
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    stream.expires_never();
    std::string unsent;
    wait_outcome waited =
        co_await park_live_reader(conn, stopping, position, announced_at_tail, unsent, wait);
    if (!unsent.empty()) {
      // The rest of a chunk the wake task began: it is already framed.
      write_outcome w = co_await write_all(stream, asio::const_buffer(asio::buffer(unsent)),
                                           options.sse_write_timeout);
      ok = note_stall(w);
    }
    if (!ok) break;
    delivered = position;
    if (waited == wait_outcome::timed_out) {
      std::string beat;
      append_sse_comment(beat, "keep-alive");
      ok = co_await write_text(beat);
    }
  }
  if (ok && read_failed) {
    // The last control event the reader got is at `position`: it resumes there (and, if the
    // failure lasts, gets it as the status of its next request).
    std::string frame;
    append_sse_comment(
        frame, read_failed->code + ": " + read_failed->message + "; resume from streamNextOffset");
    ok = co_await write_text(frame);
  }
  if (ok && record->state().lifecycle == stream_lifecycle::replaced) {
    // The database file was replaced: the reader reconnects, and its offset, from the old
    // file, is answered with 410 and a re-read from the new one.
    std::string frame;
    append_sse_comment(frame, "database replaced; reconnect to resync");
    ok = co_await write_text(frame);
  }
  if (ok && shutting_down) {
    // The server is stopping: a last control event at the reader's next offset (everything
    // before it was sent), so the client reconnects elsewhere or later exactly there. The
    // comment before it is for people reading the stream; clients ignore comments.
    published_state st = record->state();
    bool at_tail = position >= st.tail;
    std::string frame;
    append_sse_comment(frame, "server shutting down; resume from streamNextOffset");
    frame += control(position, at_tail, st.closed && at_tail);
    ok = co_await write_text(frame);
  }
  if (ok) {
    stream.socket().set_option(asio::socket_base::linger(false, 0), ignored);
    stream.expires_after(options.sse_write_timeout);
    auto last = bhttp::make_chunk_last();
    co_await asio::async_write(stream, last, tuple_awaitable);
  }
  co_return false;
}

// ---- server ----------------------------------------------------------------------------------

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
  auto p = std::make_unique<impl>(std::move(options), engine, sessions);
  beast::error_code ec;
  auto address = asio::ip::make_address(p->options.host, ec);
  if (ec) {
    return make_failure(failure_kind::invalid, "invalid_host",
                        "--host '" + p->options.host + "' is not an IP address");
  }
  tcp::endpoint endpoint{address, p->options.port};
  p->acceptor.open(endpoint.protocol(), ec);
  if (!ec) p->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) p->acceptor.bind(endpoint, ec);
  if (!ec) p->acceptor.listen(asio::socket_base::max_listen_connections, ec);
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

void server::run() {
  auto& iocs = impl_->iocs;
  {
    std::lock_guard lock(impl_->keep_running_mu);
    for (auto& ioc : iocs)
      impl_->keep_running.push_back(asio::make_work_guard(*ioc));
    impl_->keep_running.push_back(asio::make_work_guard(impl_->wake_ioc));
  }
  asio::co_spawn(*iocs.front(), impl_->listen(), asio::detached);
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
    threads.emplace_back([ioc = iocs[i].get()] { ioc->run(); });
  threads.emplace_back([p = impl_.get()] { p->wake_ioc.run(); });
  iocs.front()->run();
  for (auto& t : threads)
    t.join();
  impl_->engine.set_wake_executor({});
}

void server::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  asio::io_context& first = *impl_->iocs.front();
  asio::post(first,
             [p = impl_.get(), &first] { asio::co_spawn(first, p->drain(), asio::detached); });
}

std::size_t server::impl::open_connections() {
  std::lock_guard lock(connections_mu);
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
    std::lock_guard lock(connections_mu);
    open.assign(connections.begin(), connections.end());
  }
  spdlog::info("shutting down: {} open connections, waiting up to {} ms for them to end",
               open.size(), options.shutdown_timeout.count());
  // `stopping` is already set: each connection sees it at its next step, or here, on its own
  // thread, if it is waiting for a request or for a change.
  for (auto& conn : open) {
    asio::post(conn->stream.get_executor(), [conn] {
      if (conn->idle) conn->stream.cancel();
      if (auto t = conn->wait.lock()) t->cancel();
    });
  }
  open.clear();

  co_await wait_for_connections(std::chrono::steady_clock::now() + options.shutdown_timeout);
  {
    std::lock_guard lock(connections_mu);
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
        std::lock_guard lock(conn->live_mu);
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
