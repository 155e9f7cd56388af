// The waits at a stream's tail and the reads behind it: a long-poll's wait for a change
// (wait_for_change), the catch-up admission every read from the database passes (admit,
// read_admitted), and SSE (serve_sse), with its caught-up readers parked and written to by the
// wake task (below, "parked SSE readers").
//
// Threads: everything here runs on the connection's network thread, except
// connection::on_change(), which a stream's wake-up calls (on the wake thread, or on the writer
// thread where no server set a wake executor), and within it deliver_parked(), on the wake
// thread only; both hold connection::live_mu (server_impl.hpp says what guards what).
//
// SSE writes are pull, not push: a reader reads its next chunk only once its socket took this
// one (the delivery limits are listed at the top of server.cpp).
//
// g++ 12: every co_await names its non-trivial operands first (beast_support.hpp).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "http/server_impl.hpp"
#include "http/tls_stream.hpp"
#include "streams/cursor.hpp"
#include "streams/sse_encoding.hpp"

namespace ordo::http {

namespace {

enum class write_outcome { written, stalled, failed };

// How much one network thread writes to SSE readers per turn of its io_context before whatever
// else is queued on it runs (issue 19: in a reconnect storm, 5,000 readers per thread each
// writing as much as its socket took made a request arriving behind them wait for all of them;
// /health's p99 reached 100 ms). SSE writes go out in slices of k_sse_write_slice; a thread
// writes k_sse_slices_per_turn of them, and further slices wait in line until the queue has
// gone round once. A thread that is not that busy never makes a write wait.
constexpr std::size_t k_sse_write_slice = 64 << 10;
constexpr int k_sse_slices_per_turn = 16;

// The turns of one network thread's SSE writes: an Asio service, one per io_context, used by
// its thread alone.
class sse_write_turns : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;
  explicit sse_write_turns(asio::execution_context& context) : service(context) {}

  // True: write a slice now. False: wait() for a turn first.
  bool take() {
    if (!waiting_.empty() || left_ == 0) return false;
    --left_;
    schedule_refill();
    return true;
  }
  // Completes in line with the others waiting, once a turn has room.
  template <class Token>
  auto wait(Token&& token) {
    return asio::async_initiate<Token, void()>(
        [this](auto handler) {
          waiting_.emplace_back(std::move(handler));
          schedule_refill();
        },
        token);
  }

 private:
  void shutdown() override { waiting_.clear(); }

  asio::io_context::executor_type executor() {
    return static_cast<asio::io_context&>(context()).get_executor();
  }
  // A new turn begins once everything queued before this post has run.
  void schedule_refill() {
    if (refill_posted_) return;
    refill_posted_ = true;
    asio::post(executor(), [this] {
      refill_posted_ = false;
      left_ = k_sse_slices_per_turn;
      while (!waiting_.empty() && left_ > 0) {
        --left_;
        asio::post(executor(), std::move(waiting_.front()));
        waiting_.pop_front();
      }
      if (!waiting_.empty() || left_ < k_sse_slices_per_turn) schedule_refill();
    });
  }

  std::deque<asio::any_completion_handler<void()>> waiting_;
  int left_ = k_sse_slices_per_turn;
  bool refill_posted_ = false;
};

// Writes `buffers` whole to the connection (through its TLS stream, if it has one), a slice per
// turn (sse_write_turns), in as many writes as the socket takes. A client whose socket accepts
// no byte for `stall` is stalled: the stream's timeout then closes the socket.
template <class Buffers>
awaitable<write_outcome> write_all(connection& conn, Buffers buffers,
                                   std::chrono::milliseconds stall) {
  auto& turns = asio::use_service<sse_write_turns>(conn.stream.get_executor().context());
  beast::buffers_suffix<Buffers> rest(buffers);
  while (beast::buffer_bytes(rest) > 0) {
    if (!turns.take()) co_await turns.wait(asio::use_awaitable);
    // Per write, not per chunk: a slow reader that keeps taking bytes only lags.
    conn.stream.expires_after(stall);
    beast::error_code ec;
    std::size_t n = 0;
    auto slice = beast::buffers_prefix(k_sse_write_slice, rest);
    if (conn.tls) {
      std::tie(ec, n) = co_await conn.tls->stream.async_write_some(slice, tuple_awaitable);
    } else {
      std::tie(ec, n) = co_await conn.stream.async_write_some(slice, tuple_awaitable);
    }
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

awaitable<write_outcome> write_sse_chunk(connection& conn, asio::const_buffer head,
                                         asio::const_buffer tail, std::chrono::milliseconds stall) {
  auto chunk = sse_chunk({head, tail});
  write_outcome w = co_await write_all(conn, chunk, stall);
  co_return w;
}

std::string peer_of(const beast::tcp_stream& stream) {
  beast::error_code ec;
  auto endpoint = stream.socket().remote_endpoint(ec);
  if (ec) return "unknown";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// The control event after data up to `at`.
std::string sse_control_frame(const stream_config& c,
                              const std::optional<std::string>& client_cursor, stream_position at,
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

// ---- parked SSE readers -------------------------------------------------------------------------
//
// Fan-out to thousands of caught-up SSE readers of one stream (issue 7, target (d)): waking each
// reader's coroutine for every commit costs a thread hop, a timer cancel, a coroutine resume and
// a new timer and waiter per reader, more than the write itself. So a caught-up reader parks:
// its coroutine waits on its socket (heartbeat_wheel below wakes it for its heartbeat, and a
// client that goes is seen at once), and the task that wakes the stream's readers after
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
  stream_position after;
  stream_position upto;
  sse_mode mode = sse_mode::json;
  std::string event;
};
thread_local event_cache_entry t_event_cache;

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
// false when the coroutine must take over.
bool deliver_parked(connection& conn) REQUIRES(conn.live_mu) {
  live_parking& parking = conn.live;
  // Writing here must never block the wake task (accepted sockets are made non-blocking). Never
  // set for TLS: its SSL state belongs to the connection's thread (server_impl.hpp, invariant 5).
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
    stream_position upto = chunk->upto();
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

// The heartbeats of one network thread's parked SSE readers, on one timer (issue 19: no timer
// per connection where a shared one will do). A parked reader waits on its socket, which also
// tells it at once when its client goes; the wheel wakes it when its heartbeat (or the end of
// its response's time) is due by cancelling that wait, like a change does. An Asio service:
// one per io_context, used by that context's thread alone, alive as long as it is.
class heartbeat_wheel : public asio::execution_context::service {
 public:
  using clock = std::chrono::steady_clock;
  using entry = std::multimap<clock::time_point, std::weak_ptr<connection>>::iterator;
  static inline asio::execution_context::id id;

  explicit heartbeat_wheel(asio::execution_context& context) : service(context) {}

  // Wakes `conn` at `due` (rounded up to k_heartbeat_tick) unless remove()d first.
  entry add(const std::shared_ptr<connection>& conn, clock::time_point due) {
    auto ticks =
        (due.time_since_epoch() + k_heartbeat_tick - clock::duration(1)) / k_heartbeat_tick;
    due = clock::time_point(ticks * k_heartbeat_tick);
    entry e = entries_.emplace(due, conn);
    if (!timer_) timer_.emplace(conn->stream.get_executor());
    if (!armed_ || due < *armed_) arm(due);
    return e;
  }
  // Withdraws an entry that has not fired (its connection's heartbeat_due is not set).
  void remove(entry e) {
    entries_.erase(e);
    // An armed timer is work that keeps its thread's run() going: with no reader parked, none
    // is left to hold up a shutdown.
    if (entries_.empty() && armed_) {
      armed_.reset();
      timer_->cancel();
    }
  }

 private:
  // One tick wakes every reader due by then: the timer goes off at most once per tick, however
  // many readers there are.
  static constexpr std::chrono::milliseconds k_heartbeat_tick{100};

  void shutdown() override {
    entries_.clear();
    timer_.reset();  // while the timer's own service is still up (services end in reverse)
  }

  void arm(clock::time_point due) {
    armed_ = due;
    timer_->expires_at(due);
    timer_->async_wait([this](const beast::error_code& ec) {
      if (ec) return;  // re-armed earlier, or shut down
      armed_.reset();
      fire();
    });
  }

  void fire() {
    auto now = clock::now();
    while (!entries_.empty() && entries_.begin()->first <= now) {
      std::shared_ptr<connection> conn = entries_.begin()->second.lock();
      entries_.erase(entries_.begin());
      if (!conn) continue;
      conn->heartbeat_due = true;
      conn->wake_waiter();
    }
    if (!entries_.empty()) arm(entries_.begin()->first);
  }

  std::multimap<clock::time_point, std::weak_ptr<connection>> entries_;
  std::optional<asio::steady_timer> timer_;
  std::optional<clock::time_point> armed_;
};

// Ends a reader's parking when its SSE response ends: no wake task writes for it afterwards.
struct parking_guard {
  connection& conn;
  ~parking_guard() {
    mutex_lock lock(conn.live_mu);
    live_parking& parking = conn.live;
    parking.parked = false;
    if (parking.subscription && parking.record) parking.record->unsubscribe(*parking.subscription);
    parking.subscription.reset();
    parking.record = nullptr;
  }
};

}  // namespace

// ---- long-poll ----------------------------------------------------------------------------------

awaitable<wait_outcome> wait_for_change(connection& conn, const std::atomic<bool>& stopping,
                                        stream_record& stream, stream_position position,
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

// ---- the wake task ------------------------------------------------------------------------------

wake_task_scope::wake_task_scope() {
  t_wake_task = true;
}

wake_task_scope::~wake_task_scope() {
  t_wake_task = false;
  t_event_cache = {};
}

void connection::on_change() {
  mutex_lock lock(live_mu);
  if (!live.parked) return;  // awake: it checks the state before it parks again
  if (t_wake_task && deliver_parked(*this)) return;
  live.parked = false;
  asio::post(stream.get_executor(), [weak = weak_from_this()] {
    if (auto c = weak.lock()) c->wake_waiter();
  });
}

void connection::wake_waiter() {
  if (auto t = wait.lock()) t->cancel();
  // Only while the coroutine waits on the socket: at any other time the socket may be in the
  // middle of a write, which this would abort.
  if (waits_on_socket) {
    beast::error_code ignored;
    stream.socket().cancel(ignored);
  }
}

// ---- catch-up admission -------------------------------------------------------------------------

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
                                                   stream_position position) {
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

// ---- SSE ----------------------------------------------------------------------------------------

namespace {

// The SSE response's head. Its own coroutine, so that the header and its serializer live in a
// frame freed once written, not in serve_sse()'s frame for as long as the reader stays (hours,
// for an idle one: issue 19, (f)).
awaitable<bool> write_sse_head(connection& conn, const request& req, sse_mode mode,
                               std::chrono::milliseconds timeout) {
  bhttp::response<bhttp::empty_body> head{bhttp::status::ok, req.version()};
  add_common_headers(head, req);
  head.set(bhttp::field::content_type, "text/event-stream");
  head.set(bhttp::field::cache_control, "no-cache");
  head.set("X-Accel-Buffering", "no");
  if (mode == sse_mode::base64) head.set("Stream-SSE-Data-Encoding", "base64");
  head.keep_alive(false);
  head.chunked(true);
  bhttp::response_serializer<bhttp::empty_body> serializer{head};
  conn.stream.expires_after(timeout);
  beast::error_code ec;
  if (conn.tls) {
    std::tie(ec, std::ignore) =
        co_await bhttp::async_write_header(conn.tls->stream, serializer, tuple_awaitable);
  } else {
    std::tie(ec, std::ignore) =
        co_await bhttp::async_write_header(conn.stream, serializer, tuple_awaitable);
  }
  co_return !ec;
}

}  // namespace

awaitable<bool> server::impl::begin_sse(request& req, connection& conn,
                                        const std::shared_ptr<stream_record>& record,
                                        stream_position position,
                                        const std::optional<std::string>& client_cursor,
                                        const change_filter* filter) {
  beast::tcp_stream& stream = conn.stream;
  // The first chunk is read before the response starts, so a read that cannot be served (the
  // catch-up line is full, retention removed the data meanwhile) gets its own status and error
  // instead of an event stream that ends at once.
  // What the tail cache holds cannot fail: it is read once the head is written, not kept
  // meanwhile (10,000 readers reconnecting at once each held a copy of its message list while
  // their heads waited their turn: issue 19, (h)).
  std::optional<read_chunk> pending;
  if (position < record->state().tail && !record->caches(position)) {
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
  auto write_head = write_sse_head(conn, req, record->config().sse, options.sse_write_timeout);
  bool written = co_await std::move(write_head);
  metrics.count_response(conn.route, 200);
  if (!written) co_return false;
  conn.sse = std::make_unique<sse_reader>();
  sse_reader& r = *conn.sse;
  r.record = record;
  r.position = position;
  r.pending = std::move(pending);
  r.client_cursor = client_cursor;
  if (filter) r.filter = std::make_unique<change_filter>(*filter);
  r.peer = peer_of(stream);
  co_return false;
}

namespace {

// The data events of chunks that span several commits, encoded once per network thread for all
// the readers that read the same chunk. In a reconnect storm every reader reads the same chunks
// from -1: 10,000 readers each encoding their own copy was half the server's time (issue 19,
// (h)). What a record holds at a position never changes, so the record, the range and the
// encoding are the key. A few entries per thread, each at most one chunk
// (stream_engine_options::read_chunk_bytes, encoded), replaced oldest first.
struct shared_event_entry {
  std::weak_ptr<const stream_record> record;
  stream_position after;
  stream_position upto;
  sse_mode mode = sse_mode::json;
  std::shared_ptr<const std::string> event;
};
constexpr std::size_t k_shared_events_per_thread = 2;
thread_local std::array<shared_event_entry, k_shared_events_per_thread> t_shared_events;
thread_local std::size_t t_shared_events_next = 0;

std::shared_ptr<const std::string> shared_data_event(const std::shared_ptr<stream_record>& record,
                                                     const read_chunk& chunk, sse_mode mode) {
  for (const shared_event_entry& e : t_shared_events) {
    if (e.event && e.after == chunk.after && e.upto == chunk.upto() && e.mode == mode &&
        e.record.lock() == record) {
      return e.event;
    }
  }
  auto event = std::make_shared<std::string>();
  append_sse_data_event(*event, mode, chunk.messages);
  shared_event_entry& slot = t_shared_events[t_shared_events_next];
  t_shared_events_next = (t_shared_events_next + 1) % t_shared_events.size();
  slot = {record, chunk.after, chunk.upto(), mode, event};
  return event;
}

// Where an SSE response stands; serve_sse() keeps it, the steps below move it on. Each step is
// its own coroutine so that serve_sse()'s frame, which a parked reader keeps, holds this and
// little else.
struct sse_progress {
  // The offset of the last control event written whole: where the client resumes.
  stream_position delivered;
  bool announced_at_tail = false;
  bool shutting_down = false;
  std::optional<failure> read_failed;
};

// What a step leaves the response to do.
enum class sse_next { go_on, end, failed };

// Logs a reader cut off for not draining; true when the write went out whole.
bool note_stall(server::impl& s, const sse_reader& r, const sse_progress& p, write_outcome w) {
  if (w == write_outcome::stalled) {
    s.metrics.slow_readers_reset.add();
    const stream_config& c = r.record->config();
    spdlog::warn(
        "sse reader stalled: its socket took no byte for {} ms (--sse-write-timeout); "
        "connection reset, it resumes from its last control event, offset {} (stream {}, "
        "peer {})",
        s.options.sse_write_timeout.count(), format_offset({c.offset_prefix, p.delivered}), c.path,
        r.peer);
  }
  return w == write_outcome::written;
}

awaitable<bool> write_sse_frame(server::impl& s, connection& conn, const sse_reader& r,
                                const sse_progress& p, asio::const_buffer data,
                                asio::const_buffer control_event) {
  write_outcome w =
      co_await write_sse_chunk(conn, data, control_event, s.options.sse_write_timeout);
  co_return note_stall(s, r, p, w);
}

// A frame of text alone (a control event, a comment): `text` must outlive the write.
awaitable<bool> write_sse_text(server::impl& s, connection& conn, const sse_reader& r,
                               const sse_progress& p, const std::string& text) {
  return write_sse_frame(s, conn, r, p, asio::buffer(text), asio::const_buffer());
}

std::string control_of(const sse_reader& r, stream_position at, bool up_to_date, bool closed) {
  return sse_control_frame(r.record->config(), r.client_cursor, at, up_to_date, closed);
}

// The next data event (the pending chunk, or one read now) and its control event.
awaitable<sse_next> write_next_chunk(server::impl& s, connection& conn, sse_reader& r,
                                     sse_progress& p) {
  if (!r.pending) {
    auto read = s.read_admitted(conn, r.record, r.position);
    read_result got = co_await std::move(read);
    if (!got.chunk) {
      if (s.stopping) {
        p.shutting_down = true;
      } else {
        p.read_failed = std::move(got.error);
      }
      co_return sse_next::end;
    }
    r.pending = std::move(got.chunk);
  }
  if (r.pending->messages.empty()) co_return sse_next::end;
  const stream_config& c = r.record->config();
  // The data event: one commit's, built once and shared by every reader at this offset; one
  // of several commits, shared by this thread's readers of the same chunk; or, filtered, this
  // reader's own. The chunk's messages are let go before the write: what waits on a slow
  // socket is the encoded event alone.
  std::shared_ptr<const published_batch> batch;
  std::shared_ptr<const std::string> chunk_event;
  std::string own;
  if (r.filter && r.filter->active()) {
    // Events the filter drops are skipped; the control event still moves the offset on.
    std::vector<message_ptr> kept;
    for (const auto& m : r.pending->messages) {
      if (r.filter->matches(*m)) kept.push_back(m);
    }
    if (!kept.empty()) append_sse_data_event(own, c.sse, kept);
  } else if (r.pending->shared) {
    batch = r.pending->shared;
  } else {
    chunk_event = shared_data_event(r.record, *r.pending, c.sse);
  }
  r.position = r.pending->upto();
  r.pending.reset();
  const std::string& data = batch ? batch->sse_data_event(c.sse) : chunk_event ? *chunk_event : own;
  published_state now = r.record->state();
  bool at_tail = r.position >= now.tail;
  bool closed = now.closed && at_tail;
  std::string ctl = control_of(r, r.position, at_tail, closed);
  auto write = write_sse_frame(s, conn, r, p, asio::buffer(data), asio::buffer(ctl));
  if (!co_await std::move(write)) co_return sse_next::failed;
  p.delivered = r.position;
  p.announced_at_tail = at_tail;
  co_return closed ? sse_next::end : sse_next::go_on;
}

// A parked reader's socket became readable: its client closed the connection, or sent bytes
// an SSE response has no use for. Plain HTTP: those are dropped and the reader stays. Over
// TLS they cannot be read past the encryption here, and a client sends nothing after its
// request but its close: the reader ends either way.
bool client_still_there(connection& conn) {
  if (conn.tls) return false;
  std::array<char, 512> scrap;
  for (;;) {
    beast::error_code ec;
    std::size_t n = conn.stream.socket().receive(asio::buffer(scrap), 0, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) return true;
    if (ec || n == 0) return false;
  }
}

// Parks the caught-up reader (see "parked SSE readers" above) for at most `timeout`, then
// writes what the wake task left unsent, and a heartbeat if nothing changed.
awaitable<sse_next> wait_at_tail(server::impl& s, connection& conn, sse_reader& r, sse_progress& p,
                                 std::chrono::milliseconds timeout) {
  conn.stream.expires_never();
  {
    mutex_lock lock(conn.live_mu);
    conn.live.parked = true;
    conn.live.position = r.position;
    conn.live.at_tail = p.announced_at_tail;
    if (!conn.live.subscription) {
      conn.live.subscription = r.record->subscribe(conn.weak_from_this());
    }
  }
  // Checked after parking: a change published before it is seen here, one published after it
  // finds the reader parked.
  published_state st = r.record->state();
  wait_outcome waited = wait_outcome::changed;
  if (s.stopping) {
    waited = wait_outcome::stopping;
  } else if (st.tail <= r.position && !st.closed && st.lifecycle == stream_lifecycle::live) {
    auto& wheel = asio::use_service<heartbeat_wheel>(conn.stream.get_executor().context());
    auto entry = wheel.add(conn.shared_from_this(), std::chrono::steady_clock::now() + timeout);
    conn.heartbeat_due = false;
    conn.waits_on_socket = true;
    auto [ec] = co_await conn.stream.socket().async_wait(tcp::socket::wait_read, tuple_awaitable);
    conn.waits_on_socket = false;
    if (conn.heartbeat_due) {
      waited = wait_outcome::timed_out;
    } else {
      wheel.remove(entry);
      if (!ec && !client_still_there(conn)) waited = wait_outcome::gone;
    }
  }
  std::string unsent;
  {
    mutex_lock lock(conn.live_mu);
    conn.live.parked = false;
    r.position = conn.live.position;
    p.announced_at_tail = conn.live.at_tail;
    unsent = std::move(conn.live.unsent);
    conn.live.unsent.clear();
  }
  if (!unsent.empty()) {
    // The rest of a chunk the wake task began: it is already framed.
    auto rest =
        write_all(conn, asio::const_buffer(asio::buffer(unsent)), s.options.sse_write_timeout);
    write_outcome w = co_await std::move(rest);
    if (!note_stall(s, r, p, w)) co_return sse_next::failed;
  }
  p.delivered = r.position;
  if (waited == wait_outcome::gone) co_return sse_next::failed;  // nobody to write to
  if (s.stopping) co_return sse_next::go_on;                     // the loop sees it
  if (waited == wait_outcome::timed_out) {
    std::string beat;
    append_sse_comment(beat, "keep-alive");
    auto write = write_sse_text(s, conn, r, p, beat);
    if (!co_await std::move(write)) co_return sse_next::failed;
  }
  co_return sse_next::go_on;
}

// The response's last words: why it ends, where to resume, and the last chunk.
awaitable<void> end_sse(server::impl& s, connection& conn, sse_reader& r, sse_progress& p) {
  std::string frame;
  if (p.read_failed) {
    // The last control event the reader got is at `position`: it resumes there (and, if the
    // failure lasts, gets it as the status of its next request).
    append_sse_comment(frame, p.read_failed->code + ": " + p.read_failed->message +
                                  "; resume from streamNextOffset");
  }
  if (r.record->state().lifecycle == stream_lifecycle::replaced) {
    // The database file was replaced: the reader reconnects, and its offset, from the old
    // file, is answered with 410 and a re-read from the new one.
    append_sse_comment(frame, "database replaced; reconnect to resync");
  }
  if (p.shutting_down) {
    // The server is stopping: a last control event at the reader's next offset (everything
    // before it was sent), so the client reconnects elsewhere or later exactly there. The
    // comment before it is for people reading the stream; clients ignore comments.
    published_state st = r.record->state();
    bool at_tail = r.position >= st.tail;
    append_sse_comment(frame, "server shutting down; resume from streamNextOffset");
    frame += control_of(r, r.position, at_tail, st.closed && at_tail);
  }
  if (!frame.empty()) {
    auto write = write_sse_text(s, conn, r, p, frame);
    if (!co_await std::move(write)) co_return;
  }
  beast::error_code ignored;
  conn.stream.socket().set_option(asio::socket_base::linger(false, 0), ignored);
  conn.stream.expires_after(s.options.sse_write_timeout);
  auto last = bhttp::make_chunk_last();
  if (conn.tls) {
    co_await asio::async_write(conn.tls->stream, last, tuple_awaitable);
  } else {
    co_await asio::async_write(conn.stream, last, tuple_awaitable);
  }
}

}  // namespace

awaitable<void> server::impl::serve_sse(connection& conn, std::unique_ptr<sse_reader> reader) {
  sse_reader& r = *reader;
  gauge_hold reader_gauge(metrics.sse_readers);
  {
    mutex_lock lock(conn.live_mu);
    conn.live.record = r.record.get();
    conn.live.engine = &engine;
    conn.live.client_cursor = &r.client_cursor;
    // Over TLS the coroutine writes every event itself, woken by the wake task: writing from
    // the wake thread would use the connection's SSL state from a second thread. It costs a
    // thread hop and a resume per commit and reader, what parking saves on plain HTTP.
    conn.live.inline_ok = !(r.filter && r.filter->active()) && !conn.tls;
  }
  parking_guard parking{conn};

  sse_progress p;
  p.delivered = r.position;
  auto deadline = std::chrono::steady_clock::now() + options.sse_max_duration;
  sse_next next = sse_next::go_on;
  while (next == sse_next::go_on) {
    if (stopping) {
      p.shutting_down = true;
      break;
    }
    published_state st = r.record->state();
    if (st.lifecycle != stream_lifecycle::live) break;
    if (r.pending || r.position < st.tail) {
      auto step = write_next_chunk(*this, conn, r, p);
      next = co_await std::move(step);
      continue;
    }
    if (st.closed || !p.announced_at_tail) {
      std::string frame = control_of(r, r.position, true, st.closed);
      auto write = write_sse_text(*this, conn, r, p, frame);
      bool ok = co_await std::move(write);
      p.announced_at_tail = true;
      next = !ok ? sse_next::failed : st.closed ? sse_next::end : sse_next::go_on;
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    auto wait = std::min<std::chrono::milliseconds>(
        options.sse_heartbeat_interval,
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now));
    auto step = wait_at_tail(*this, conn, r, p, wait);
    next = co_await std::move(step);
  }
  if (next != sse_next::failed) {
    auto end = end_sse(*this, conn, r, p);
    co_await std::move(end);
  }
}

}  // namespace ordo::http
