// ordo-bench: a load generator for any server that speaks Durable Streams over plain HTTP.
//
//   ordo-bench SCENARIO --url http://127.0.0.1:4437 [--server-pid PID] [options]
//
// Prints one JSON object: the scenario, its parameters, throughput, latency percentiles (µs),
// and, with --server-pid, the server's CPU seconds used during the run, its memory and the
// context switches of its threads (voluntary: it waited; involuntary: it was preempted).
//
// Scenarios (docs/BENCHMARKS.md):
//   append    appends of --message-bytes from --connections connections to --streams streams
//   batch     JSON batch appends: --batch values per POST
//   delivery  append-to-delivery latency at a fixed --rate through --live sse|long-poll
//   fanout    --subscribers SSE readers of one stream; every one must get every message
//             (delivery and fanout: --writers appending connections, each paced, default
//             enough that a 1 ms / 100 ms answer does not lower the offered rate)
//   catchup   prefill --messages values, then read them all with catch-up reads
//   idle-sse  --subscribers idle SSE connections; server memory per connection
//   prefill   --messages values spread over --streams streams (for the time-to-ready run)
//   storm     the reconnect storm: --subscribers SSE readers all connect at once from -1 to a
//             stream of --messages values, beside one reader that never reads, while a
//             separate process probes GET /health every 100 ms; every reader must get every
//             value exactly once ("latency" is then /health's, and the server's RSS growth
//             during the storm is reported)
//
// Written against Asio and Beast directly, with coroutines on one io_context: thousands of
// connections cost no threads. Hand-written rather than wrk because wrk is not packaged here,
// cannot hold SSE readers, and cannot measure append-to-delivery latency.
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

// One server (a node) the generator talks to.
struct target {
  std::string host;
  std::string port;
};

struct options {
  std::string scenario;
  std::string host = "127.0.0.1";  // the first of `targets`
  std::string port = "4437";
  // Every --url given: appending connection i talks to targets[i % n]; in delivery and fanout the
  // writers talk to the first and the readers to the last (another node of a cluster).
  std::vector<target> targets;
  const target& appender_target(int i) const {
    return targets[static_cast<std::size_t>(i) % targets.size()];
  }
  const target& reader_target() const { return targets.back(); }
  std::string prefix = "/v1/stream";
  // Sent as Authorization: Bearer on every request when set (a server with --auth).
  std::string token;
  int server_pid = 0;
  int connections = 64;
  int streams = 1;
  int message_bytes = 100;
  int batch = 1000;
  double duration_s = 10;
  double rate = 1000;
  std::string live = "sse";
  int subscribers = 1;
  int writers = 0;         // delivery/fanout: 0 picks enough for the rate
  int reader_threads = 0;  // delivery/fanout: 0 is 1 for delivery, every core for fanout
  long long messages = 1'000'000;
  // append: before measuring, one message of this many bytes into a stream of its own (the
  // noisy neighbour, scenario (i)); 0: none.
  long long neighbour_bytes = 0;
  std::string run_id;
};

// ---- measurements ----------------------------------------------------------------------------

struct latencies {
  std::vector<std::uint32_t> micros;
  void add(clock_type::duration d) {
    micros.push_back(static_cast<std::uint32_t>(std::min<long long>(
        std::chrono::duration_cast<std::chrono::microseconds>(d).count(), UINT32_MAX)));
  }
  json::object summary() {
    json::object o;
    o["count"] = micros.size();
    if (micros.empty()) return o;
    std::sort(micros.begin(), micros.end());
    auto at = [&](double q) {
      std::size_t i = static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1));
      return micros[i];
    };
    o["p50_us"] = at(0.50);
    o["p90_us"] = at(0.90);
    o["p99_us"] = at(0.99);
    o["p999_us"] = at(0.999);
    o["max_us"] = micros.back();
    return o;
  }
};

struct process_sample {
  double cpu_seconds = 0;
  long rss_kib = 0;
  long peak_kib = 0;
  // Summed over the process's threads (/proc/PID/task/*/status): a thread that ended since the
  // last sample takes its count with it, so compare samples of long-lived threads.
  long long voluntary_switches = 0;
  long long involuntary_switches = 0;
};

// Adds the context switches of every thread of `pid` to `s`.
void add_context_switches(int pid, process_sample& s) {
  std::error_code ec;
  std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
  if (ec) return;
  for (const auto& task : tasks) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0)
        s.voluntary_switches += std::stoll(line.substr(24));
      if (line.rfind("nonvoluntary_ctxt_switches:", 0) == 0)
        s.involuntary_switches += std::stoll(line.substr(27));
    }
  }
}

std::optional<process_sample> sample_process(int pid) {
  if (pid <= 0) return std::nullopt;
  process_sample s;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::vector<std::string> fields;
  std::string field;
  for (char c : text.substr(close + 2)) {
    if (c == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field.push_back(c);
    }
  }
  // After the command: state is field 0; utime and stime are fields 11 and 12.
  if (fields.size() > 12) {
    double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
    s.cpu_seconds = (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::stol(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) s.peak_kib = std::stol(line.substr(6));
  }
  add_context_switches(pid, s);
  return s;
}

// ---- HTTP ------------------------------------------------------------------------------------

struct http_result {
  beast::error_code ec;
  int status = 0;
  std::string body;
  std::string next_offset;
  std::string cursor;
  bool up_to_date = false;
};

// Most time one request may take, from writing it to its answer's last byte.
constexpr auto k_request_timeout = std::chrono::seconds(60);

// Undoes HTTP/1.1 chunked framing as bytes arrive, passing each run of body bytes on (chunk
// extensions and trailers are skipped; done after the last chunk's trailer). A body without chunked
// framing passes through.
struct chunk_decoder {
  bool chunked = true;
  bool done = false;

  template <class F>
  void feed(std::string_view in, F&& body) {
    if (!chunked) {
      if (!in.empty()) body(in);
      return;
    }
    std::size_t i = 0;
    while (i < in.size() && !done) {
      switch (state_) {
        case state::size: {
          char ch = in[i++];
          int digit = ch >= '0' && ch <= '9'   ? ch - '0'
                      : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                      : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                               : -1;
          if (digit >= 0) {
            remaining_ = remaining_ * 16 + static_cast<std::uint64_t>(digit);
          } else if (ch == '\n') {
            end_size_line();
          } else {
            state_ = state::extension;  // '\r' or ';' and what follows, up to the line's end
          }
          break;
        }
        case state::extension:
          if (in[i++] == '\n') end_size_line();
          break;
        case state::data: {
          std::size_t take = static_cast<std::size_t>(
              std::min<std::uint64_t>(remaining_, static_cast<std::uint64_t>(in.size() - i)));
          body(in.substr(i, take));
          i += take;
          remaining_ -= take;
          if (remaining_ == 0) state_ = state::data_end;
          break;
        }
        case state::data_end:  // the CRLF after a chunk's data
          if (in[i++] == '\n') state_ = state::size;
          break;
        case state::trailer: {  // after the last chunk: trailer lines up to an empty one
          char ch = in[i++];
          if (ch == '\n') {
            if (line_length_ == 0) done = true;
            line_length_ = 0;
          } else if (ch != '\r') {
            ++line_length_;
          }
          break;
        }
      }
    }
  }

 private:
  enum class state { size, extension, data, data_end, trailer };
  void end_size_line() {
    if (remaining_ == 0) {
      state_ = state::trailer;  // the last chunk
    } else {
      state_ = state::data;
    }
  }
  state state_ = state::size;
  std::uint64_t remaining_ = 0;
  std::size_t line_length_ = 0;
};

class connection {
 public:
  connection(asio::io_context& ioc, const options& o) : connection(ioc, o, o.targets.front()) {}
  connection(asio::io_context& ioc, const options& o, const target& to)
      : stream_(ioc), o_(o), to_(to) {}

  asio::awaitable<beast::error_code> connect() {
    tcp::resolver resolver(stream_.get_executor());
    auto [ec, endpoints] = co_await resolver.async_resolve(to_.host, to_.port, tuple_awaitable);
    if (ec) co_return ec;
    auto [cec, ep] = co_await stream_.async_connect(endpoints, tuple_awaitable);
    if (!cec) {
      beast::error_code ignored;
      stream_.socket().set_option(tcp::no_delay(true), ignored);
    }
    co_return cec;
  }

  asio::awaitable<http_result> request(bhttp::verb method, std::string target,
                                       std::string content_type, std::string body) {
    if (auto ec = co_await reopen_if_closed(); ec) co_return http_result{ec};
    bhttp::request<bhttp::string_body> req{method, target, 11};
    req.set(bhttp::field::host, to_.host);
    if (!o_.token.empty()) req.set(bhttp::field::authorization, "Bearer " + o_.token);
    if (!content_type.empty()) req.set(bhttp::field::content_type, content_type);
    req.body() = std::move(body);
    req.prepare_payload();
    req.keep_alive(true);
    http_result r;
    stream_.expires_after(k_request_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream_, req, tuple_awaitable);
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(1ull << 30);
    auto [rec, rn] = co_await bhttp::async_read(stream_, buffer_, parser, tuple_awaitable);
    if (rec) {
      r.ec = rec;
      co_return r;
    }
    auto& res = parser.get();
    closed_ = !res.keep_alive();
    r.status = static_cast<int>(res.result_int());
    r.body = std::move(res.body());
    r.next_offset = std::string(res["Stream-Next-Offset"]);
    r.cursor = std::string(res["Stream-Cursor"]);
    r.up_to_date = res["Stream-Up-To-Date"] == "true";
    co_return r;
  }

  // A POST, written from a request head built by hand and its answer read by a minimal parser
  // (status, Content-Length, chunked or read-to-close body, Connection: close): the appending
  // scenarios run on the same two cores as the server, and Beast's serializer and parser per
  // request cost the generator about 10 µs per append, a quarter of the whole machine's work
  // per append.
  asio::awaitable<http_result> post(const std::string& target, std::string_view content_type,
                                    const std::string& body) {
    if (auto ec = co_await reopen_if_closed(); ec) co_return http_result{ec};
    http_result r;
    head_.clear();
    head_.append("POST ").append(target).append(" HTTP/1.1\r\nHost: ").append(to_.host);
    if (!o_.token.empty()) head_.append("\r\nAuthorization: Bearer ").append(o_.token);
    head_.append("\r\nContent-Type: ").append(content_type);
    head_.append("\r\nContent-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
    std::array<asio::const_buffer, 2> parts{asio::buffer(head_), asio::buffer(body)};
    stream_.expires_after(k_request_timeout);
    auto [wec, wn] = co_await asio::async_write(stream_, parts, tuple_awaitable);
    if (wec) {
      r.ec = wec;
      co_return r;
    }
    // The head: up to the blank line.
    std::size_t head_end;
    for (;;) {
      auto data = buffer_.data();
      std::string_view got(static_cast<const char*>(data.data()), data.size());
      head_end = got.find("\r\n\r\n");
      if (head_end != std::string_view::npos) break;
      auto [rec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), tuple_awaitable);
      if (rec) {
        r.ec = rec;
        co_return r;
      }
      buffer_.commit(n);
    }
    std::string head(static_cast<const char*>(buffer_.data().data()), head_end + 4);
    buffer_.consume(head_end + 4);
    // "HTTP/1.1 204 ..."
    if (head.size() < 12) {
      r.ec = bhttp::error::bad_version;
      co_return r;
    }
    r.status = std::atoi(head.c_str() + 9);
    for (char& ch : head)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    bool chunked = head.find("\r\ntransfer-encoding: chunked") != std::string::npos;
    closed_ = head.find("\r\nconnection: close") != std::string::npos;
    std::size_t length = 0;
    bool has_length = false;
    if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos) {
      length = static_cast<std::size_t>(std::strtoull(head.c_str() + at + 17, nullptr, 10));
      has_length = true;
    }
    bool no_body = r.status == 204 || r.status == 304 || (r.status >= 100 && r.status < 200);
    if (no_body || (!chunked && has_length && length == 0)) co_return r;
    if (!chunked && !has_length) {
      // Neither a length nor chunks: the body ends when the server closes the connection.
      closed_ = true;
      for (;;) {
        auto data = buffer_.data();
        r.body.append(static_cast<const char*>(data.data()), data.size());
        buffer_.consume(data.size());
        auto [rec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), tuple_awaitable);
        if (rec == asio::error::eof) co_return r;
        if (rec) {
          r.ec = rec;
          co_return r;
        }
        buffer_.commit(n);
      }
    }
    // The body: Content-Length bytes, or chunks up to the last one.
    chunk_decoder chunks;
    chunks.chunked = chunked;
    auto take = [&] {
      auto data = buffer_.data();
      std::string_view got(static_cast<const char*>(data.data()), data.size());
      if (chunked) {
        // Fed a byte at a time up to the end of the body, so bytes after it stay buffered.
        std::size_t used = 0;
        while (used < got.size() && !chunks.done) {
          chunks.feed(got.substr(used, 1), [&](std::string_view b) { r.body.append(b); });
          ++used;
        }
        buffer_.consume(used);
      } else {
        std::size_t n = std::min(got.size(), length - r.body.size());
        r.body.append(got.substr(0, n));
        buffer_.consume(n);
      }
    };
    take();
    while (chunked ? !chunks.done : r.body.size() < length) {
      auto [rec, n] = co_await stream_.async_read_some(buffer_.prepare(4096), tuple_awaitable);
      if (rec) {
        r.ec = rec;
        co_return r;
      }
      buffer_.commit(n);
      take();
    }
    co_return r;
  }

  beast::tcp_stream& stream() { return stream_; }
  beast::flat_buffer& buffer() { return buffer_; }

 private:
  // After an answer that closed the connection (Connection: close, or a body read to its
  // close), the next request goes on a new one.
  asio::awaitable<beast::error_code> reopen_if_closed() {
    if (!closed_) co_return beast::error_code{};
    closed_ = false;
    beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.consume(buffer_.size());
    co_return co_await connect();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::string head_;
  bool closed_ = false;
  const options& o_;
  const target& to_;
};

std::string stream_target(const options& o, const std::string& name) {
  return o.prefix + "/bench-" + o.run_id + "-" + name;
}

// A JSON message of about `bytes` bytes carrying its send time (ns since `epoch`) and sequence.
std::string message(long long sent_ns, long long seq, int bytes) {
  std::string m =
      "{\"t\":" + std::to_string(sent_ns) + ",\"s\":" + std::to_string(seq) + ",\"p\":\"";
  int pad = std::max(0, bytes - static_cast<int>(m.size()) - 2);
  m.append(static_cast<std::size_t>(pad), 'x');
  m += "\"}";
  return m;
}

// Calls on_message(sent_ns, seq) for every message in a body or SSE data line.
template <class F>
void scan_messages(std::string_view text, F&& on_message) {
  std::size_t i = 0;
  while ((i = text.find("{\"t\":", i)) != std::string_view::npos) {
    i += 5;
    long long t = 0, s = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
      t = t * 10 + (text[i++] - '0');
    auto si = text.find("\"s\":", i);
    if (si == std::string_view::npos) break;
    i = si + 4;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9')
      s = s * 10 + (text[i++] - '0');
    on_message(t, s);
  }
}

// ---- the run ---------------------------------------------------------------------------------

struct run_state {
  explicit run_state(const options& o) : o(o) {}
  const options& o;
  asio::io_context ioc{1};
  clock_type::time_point epoch = clock_type::now();
  std::atomic<bool> stop{false};
  latencies lat;
  long long ops = 0;     // requests acknowledged
  long long values = 0;  // messages moved
  long long errors = 0;
  std::string first_error;
  std::map<int, long long> statuses;

  long long now_ns() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now() - epoch).count();
  }
  void error(const std::string& what) {
    ++errors;
    if (first_error.empty()) first_error = what;
  }
};

asio::awaitable<void> create_stream(run_state* st, std::string name, std::string type) {
  connection c(st->ioc, st->o);
  if (auto ec = co_await c.connect(); ec) {
    st->error("connect: " + ec.message());
    co_return;
  }
  auto r = co_await c.request(bhttp::verb::put, stream_target(st->o, name), type, "");
  if (r.ec || (r.status != 201 && r.status != 200)) {
    st->error("create " + name + ": " + std::to_string(r.status) + " " + r.ec.message());
  }
}

// The noisy neighbour: one stream holding one message of `bytes` bytes, written before the
// measured appends start.
asio::awaitable<void> store_neighbour(run_state* st, long long bytes) {
  co_await create_stream(st, "neighbour", "application/octet-stream");
  connection c(st->ioc, st->o);
  if (auto ec = co_await c.connect(); ec) {
    st->error("connect: " + ec.message());
    co_return;
  }
  std::string body(static_cast<std::size_t>(bytes), 'n');
  auto r = co_await c.request(bhttp::verb::post, stream_target(st->o, "neighbour"),
                              "application/octet-stream", body);
  if (r.ec || (r.status != 204 && r.status != 200)) {
    st->error("neighbour append of " + std::to_string(bytes) +
              " bytes: " + std::to_string(r.status) + " " + r.ec.message());
  }
}

// One connection appending until the deadline: `batch` values per POST (1: a single message).
asio::awaitable<void> appender(run_state* st, int id, int batch, clock_type::time_point until) {
  connection c(st->ioc, st->o, st->o.appender_target(id));
  if (auto ec = co_await c.connect(); ec) {
    st->error("connect: " + ec.message());
    co_return;
  }
  long long seq = 0;
  while (clock_type::now() < until) {
    int stream = (id + static_cast<int>(seq)) % st->o.streams;
    std::string body;
    if (batch > 1) {
      body.push_back('[');
      for (int i = 0; i < batch; ++i) {
        if (i) body.push_back(',');
        body += message(st->now_ns(), seq++, st->o.message_bytes);
      }
      body.push_back(']');
    } else {
      body = message(st->now_ns(), seq++, st->o.message_bytes);
    }
    auto started = clock_type::now();
    auto r =
        co_await c.post(stream_target(st->o, std::to_string(stream)), "application/json", body);
    if (r.ec) {
      st->error("append: " + r.ec.message());
      co_return;
    }
    st->statuses[r.status]++;
    if (r.status != 204 && r.status != 200) {
      st->error("append: HTTP " + std::to_string(r.status) + " " + r.body.substr(0, 200));
      continue;
    }
    st->lat.add(clock_type::now() - started);
    st->ops += 1;
    st->values += batch;
  }
}

// Appends at a fixed rate (one message per tick) until `count` messages are sent.
// Writer w numbers its messages w * k_writer_seq_span + k, so readers check order per writer.
constexpr long long k_writer_seq_span = 1'000'000'000'000LL;

// How long the delivery and fan-out scenarios wait for every SSE reader to be subscribed
// before the first message goes out anyway.
constexpr auto k_max_subscribe_wait = std::chrono::seconds(60);

// Writer `writer` of `writers`, all started at `start`: each is offset by its share of one
// interval, so together they send evenly at writers × rate instead of in bursts.
asio::awaitable<void> paced_writer(run_state* st, std::string name, double rate, long long count,
                                   int writer, int writers, clock_type::time_point start) {
  connection c(st->ioc, st->o);
  if (auto ec = co_await c.connect(); ec) {
    st->error("connect: " + ec.message());
    co_return;
  }
  asio::steady_timer timer(st->ioc);
  auto interval = std::chrono::nanoseconds(static_cast<long long>(1e9 / rate));
  auto next = start + interval * writer / writers - interval;
  for (long long seq = 0; seq < count && !st->stop; ++seq) {
    next += interval;
    timer.expires_at(next);
    co_await timer.async_wait(tuple_awaitable);
    std::string body = message(st->now_ns(), writer * k_writer_seq_span + seq, st->o.message_bytes);
    auto r = co_await c.post(stream_target(st->o, name), "application/json", body);
    if (r.ec || (r.status != 204 && r.status != 200)) {
      st->error("paced append: " + std::to_string(r.status) + " " + r.ec.message());
      co_return;
    }
  }
}

// An SSE reader from `offset`: records each message's append-to-delivery latency and counts
// what it got; ends after `expect` messages, or at stop.
asio::awaitable<void> sse_reader(run_state* st, std::string name, std::string offset,
                                 long long expect, std::vector<long long>* received, int index,
                                 bool record, std::atomic<int>* subscribed = nullptr) {
  connection c(st->ioc, st->o, st->o.reader_target());
  if (auto ec = co_await c.connect(); ec) {
    st->error("sse connect: " + ec.message());
    co_return;
  }
  bhttp::request<bhttp::empty_body> req{
      bhttp::verb::get, stream_target(st->o, name) + "?offset=" + offset + "&live=sse", 11};
  req.set(bhttp::field::host, st->o.reader_target().host);
  if (!st->o.token.empty()) req.set(bhttp::field::authorization, "Bearer " + st->o.token);
  c.stream().expires_never();
  auto [wec, wn] = co_await bhttp::async_write(c.stream(), req, tuple_awaitable);
  if (wec) {
    st->error("sse write: " + wec.message());
    co_return;
  }
  bhttp::response_parser<bhttp::buffer_body> parser;
  parser.body_limit(boost::none);
  auto [hec, hn] =
      co_await bhttp::async_read_header(c.stream(), c.buffer(), parser, tuple_awaitable);
  if (hec || parser.get().result_int() != 200) {
    st->error("sse status " + std::to_string(parser.get().result_int()) + " " + hec.message());
    co_return;
  }
  if (subscribed) ++*subscribed;
  // The body is read straight from the socket and its chunked framing undone here: with a
  // parser per read, the generator's side of each delivery cost about as much as the server's,
  // and a fan-out run measured the generator.
  chunk_decoder chunks;
  chunks.chunked = parser.chunked();
  std::vector<char> buffer(64 << 10);
  std::string partial;  // the start of an event that the next read completes
  long long got = 0;
  long long now = 0;
  std::vector<long long> last_seq;  // per writer: its last sequence number seen
  auto on_message = [&](long long t, long long s) {
    auto writer = static_cast<std::size_t>(s / k_writer_seq_span);
    if (writer >= last_seq.size()) last_seq.resize(writer + 1, -1);
    if (s % k_writer_seq_span != last_seq[writer] + 1) {
      st->error("sse reader " + std::to_string(index) + ": message " + std::to_string(s) +
                " out of order or repeated");
    }
    last_seq[writer] = s % k_writer_seq_span;
    ++got;
    ++st->values;  // as it arrives: a run cut by its deadline still reports what moved
    if (record) st->lat.add(std::chrono::nanoseconds(now - t));
  };
  // Only complete events are scanned: up to the last blank line.
  auto on_body = [&](std::string_view data) {
    std::string_view text = data;
    if (!partial.empty()) {
      partial.append(data);
      text = partial;
    }
    auto end = text.rfind("\n\n");
    if (end == std::string_view::npos) {
      if (partial.empty()) partial.assign(data);
      return;
    }
    scan_messages(text.substr(0, end), on_message);
    std::string rest(text.substr(end + 2));
    partial = std::move(rest);
  };
  now = st->now_ns();
  auto early = c.buffer().data();  // read with the header
  chunks.feed(std::string_view(static_cast<const char*>(early.data()), early.size()), on_body);
  c.buffer().consume(c.buffer().size());
  while (!chunks.done && got < expect && !st->stop) {
    auto [rec, n] =
        co_await c.stream().socket().async_read_some(asio::buffer(buffer), tuple_awaitable);
    now = st->now_ns();
    chunks.feed(std::string_view(buffer.data(), n), on_body);
    if (rec) {
      // A chunked body ends with its last chunk; only one without framing ends at EOF.
      bool ended = rec == asio::error::eof && !chunks.chunked;
      if (!st->stop && !ended) st->error("sse read: " + rec.message());
      break;
    }
  }
  if (received) (*received)[static_cast<std::size_t>(index)] = got;
}

// A long-poll reader: follows from `offset`, recording delivery latency, until `expect`.
asio::awaitable<void> long_poll_reader(run_state* st, std::string name, std::string offset,
                                       long long expect) {
  connection c(st->ioc, st->o, st->o.reader_target());
  if (auto ec = co_await c.connect(); ec) {
    st->error("long-poll connect: " + ec.message());
    co_return;
  }
  long long got = 0;
  std::string cursor;
  while (got < expect && !st->stop) {
    std::string target = stream_target(st->o, name) + "?offset=" + offset + "&live=long-poll";
    if (!cursor.empty()) target += "&cursor=" + cursor;
    auto r = co_await c.request(bhttp::verb::get, target, "", "");
    if (r.ec) {
      st->error("long-poll: " + r.ec.message());
      co_return;
    }
    long long now = st->now_ns();
    if (r.status == 200) {
      scan_messages(r.body, [&](long long t, long long) {
        ++got;
        st->lat.add(std::chrono::nanoseconds(now - t));
      });
    } else if (r.status != 204) {
      st->error("long-poll: HTTP " + std::to_string(r.status));
      co_return;
    }
    if (!r.next_offset.empty()) offset = r.next_offset;
    cursor = r.cursor;
  }
  st->values += got;
}

// Catch-up reads from the start to the tail; counts values.
asio::awaitable<void> catch_up(run_state* st, std::string name) {
  connection c(st->ioc, st->o);
  if (auto ec = co_await c.connect(); ec) {
    st->error("connect: " + ec.message());
    co_return;
  }
  std::string offset = "-1";
  for (;;) {
    auto started = clock_type::now();
    auto r = co_await c.request(bhttp::verb::get, stream_target(st->o, name) + "?offset=" + offset,
                                "", "");
    if (r.ec || r.status != 200) {
      st->error("catch-up: " + std::to_string(r.status) + " " + r.ec.message());
      co_return;
    }
    st->lat.add(clock_type::now() - started);
    st->ops += 1;
    scan_messages(r.body, [&](long long, long long) { st->values += 1; });
    offset = r.next_offset;
    if (r.up_to_date) co_return;
  }
}

// Fills streams 0..streams-1 of `name_prefix` with `total` values, batch values per POST.
asio::awaitable<void> prefill(run_state* st, int conn_index, int conns, int streams,
                              long long total, int batch) {
  connection c(st->ioc, st->o);
  if (auto ec = co_await c.connect(); ec) {
    st->error("connect: " + ec.message());
    co_return;
  }
  long long per_stream = total / streams;
  for (int s = conn_index; s < streams; s += conns) {
    for (long long done = 0; done < per_stream;) {
      int n = static_cast<int>(std::min<long long>(batch, per_stream - done));
      std::string body = "[";
      for (int i = 0; i < n; ++i) {
        if (i) body.push_back(',');
        body += message(0, done + i, st->o.message_bytes);
      }
      body.push_back(']');
      auto r = co_await c.post(stream_target(st->o, std::to_string(s)), "application/json", body);
      if (r.ec || (r.status != 204 && r.status != 200)) {
        st->error("prefill: " + std::to_string(r.status) + " " + r.ec.message());
        co_return;
      }
      done += n;
      st->values += n;
    }
  }
}

// ---- the reconnect storm's side parts ----------------------------------------------------------

// A blocking TCP connection to the server, or -1. `receive_buffer` > 0 shrinks the socket's
// receive buffer before connecting (the stalled reader: the server's writes block sooner).
int connect_blocking(const options& o, int receive_buffer, std::chrono::seconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (::getaddrinfo(o.host.c_str(), o.port.c_str(), &hints, &found) != 0) return -1;
  int fd = -1;
  for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout.count()), 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (receive_buffer > 0)
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

// One probe as a load balancer makes it: a new connection, GET /health, the whole answer.
// Microseconds, or -1 when it failed or did not answer 200 within 5 s.
long long probe_health(const options& o) {
  auto started = clock_type::now();
  int fd = connect_blocking(o, 0, std::chrono::seconds(5));
  if (fd < 0) return -1;
  std::string request = "GET /health HTTP/1.1\r\nHost: " + o.host + "\r\nConnection: close\r\n";
  if (!o.token.empty()) request += "Authorization: Bearer " + o.token + "\r\n";
  request += "\r\n";
  std::string answer;
  bool ok = send_all(fd, request);
  char buffer[4096];
  while (ok) {
    ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0) ok = false;
    if (n <= 0) break;
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  if (!ok || answer.rfind("HTTP/1.1 200", 0) != 0) return -1;
  return std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - started).count();
}

// What the prober reports per probe.
struct probe_sample {
  long long micros;   // -1: failed
  long long rss_kib;  // the server's, right after the probe (0 without --server-pid)
};

// The /health prober of the storm, in a process of its own so that the storm's readers cannot
// delay it: forked before this process starts any thread. It waits for a byte on `control`,
// then probes every 100 ms and writes a probe_sample per probe to `out` until `control` is
// closed.
struct prober {
  pid_t pid = -1;
  int control = -1;  // parent's end: one byte starts the probes, closing it ends them
  int results = -1;  // parent's end of the samples

  static std::optional<prober> start(const options& o) {
    int control_pipe[2];
    int results_pipe[2];
    if (::pipe(control_pipe) != 0) return std::nullopt;
    if (::pipe(results_pipe) != 0) return std::nullopt;
    pid_t pid = ::fork();
    if (pid < 0) return std::nullopt;
    if (pid == 0) {
      ::close(control_pipe[1]);
      ::close(results_pipe[0]);
      run(o, control_pipe[0], results_pipe[1]);
    }
    ::close(control_pipe[0]);
    ::close(results_pipe[1]);
    return prober{pid, control_pipe[1], results_pipe[0]};
  }

  void go() const { (void)!::write(control, "g", 1); }

  // Ends the probes and returns every sample.
  std::vector<probe_sample> finish() {
    ::close(control);
    std::vector<probe_sample> samples;
    probe_sample s{};
    while (::read(results, &s, sizeof s) == static_cast<ssize_t>(sizeof s))
      samples.push_back(s);
    ::close(results);
    ::waitpid(pid, nullptr, 0);
    return samples;
  }

 private:
  [[noreturn]] static void run(const options& o, int control, int out) {
    char go = 0;
    if (::read(control, &go, 1) != 1) ::_exit(0);
    auto next = clock_type::now();
    for (;;) {
      probe_sample s{probe_health(o), 0};
      if (auto p = sample_process(o.server_pid)) s.rss_kib = p->rss_kib;
      if (::write(out, &s, sizeof s) != static_cast<ssize_t>(sizeof s)) ::_exit(0);
      next += std::chrono::milliseconds(100);
      auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - clock_type::now());
      pollfd pfd{control, POLLIN, 0};
      // Readable means closed (the parent sends nothing after the first byte): done.
      if (::poll(&pfd, 1, static_cast<int>(std::max<long long>(0, wait.count()))) != 0) ::_exit(0);
    }
  }
};

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

template <class F>
void run_all(run_state& st, F&& spawn) {
  spawn();
  st.ioc.run();
  st.ioc.restart();
}

void create_streams(run_state& st, int count) {
  run_all(st, [&] {
    // In groups, so a thousand creates do not open a thousand connections at once.
    for (int g = 0; g < std::min(count, 16); ++g) {
      asio::co_spawn(
          st.ioc,
          [](run_state* s, int first, int step, int count) -> asio::awaitable<void> {
            for (int i = first; i < count; i += step)
              co_await create_stream(s, std::to_string(i), "application/json");
          }(&st, g, std::min(count, 16), count),
          asio::detached);
    }
  });
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  std::vector<std::string> urls = {"http://127.0.0.1:4437"};
  CLI::App app{"ordo-bench: a load generator for any Durable Streams server (docs/BENCHMARKS.md)"};
  app.add_option("scenario", o.scenario, "What to measure")
      ->required()
      ->check(CLI::IsMember(
          {"append", "batch", "delivery", "fanout", "catchup", "idle-sse", "prefill", "storm"}));
  app.add_option("--url", urls,
                 "The server's base URL; several, comma-separated, for the nodes of a cluster "
                 "(appending connections take turns; delivery and fanout write to the first and "
                 "read from the last)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--prefix", o.prefix, "Where streams live on the server")->capture_default_str();
  app.add_option("--token", o.token, "Bearer token for a server with authentication")
      ->envname("ORDO_TOKEN");
  app.add_option("--server-pid", o.server_pid, "Report this process's CPU time and memory")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--connections", o.connections, "append, batch, prefill: connections")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--streams", o.streams, "append, batch, prefill: streams written")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--message-bytes", o.message_bytes,
                 "Bytes per message (padded; never less than its timestamp and number)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--batch", o.batch, "batch: values per POST")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds of load")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  app.add_option("--rate", o.rate, "delivery, fanout: messages per second")
      ->check(CLI::Range(0.001, 1e7))
      ->capture_default_str();
  app.add_option("--live", o.live, "delivery: the live read mode")
      ->check(CLI::IsMember({"sse", "long-poll"}))
      ->capture_default_str();
  app.add_option("--subscribers", o.subscribers, "delivery, fanout, idle-sse, storm: readers")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--writers", o.writers,
                 "delivery, fanout: appending connections (default: enough for the rate)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--reader-threads", o.reader_threads,
                 "delivery, fanout, storm: threads the SSE readers are spread over (default: 1 "
                 "for delivery, one per core for fanout and storm)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--neighbour-bytes", o.neighbour_bytes,
                 "append: first store one message this large in a stream of its own (the noisy "
                 "neighbour)")
      ->check(CLI::Range(0LL, 1LL << 31))
      ->capture_default_str();
  app.add_option("--messages", o.messages, "catchup, prefill, storm: messages written first")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--run-id", o.run_id, "Part of every stream name (default: pid and time)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; anything else is a usage error
  }
  for (const std::string& one : urls) {
    auto parsed = boost::urls::parse_uri(one);
    if (!parsed || parsed->host().empty() || parsed->scheme() != "http") {
      std::cerr << "--url: '" << one << "' is not an http:// URL with a host\n";
      return 2;
    }
    o.targets.push_back(
        {parsed->host(), parsed->has_port() ? std::string(parsed->port()) : std::string("80")});
  }
  o.host = o.targets.front().host;
  o.port = o.targets.front().port;
  if (o.run_id.empty())
    o.run_id = std::to_string(::getpid()) + "-" + std::to_string(std::time(nullptr));
  raise_fd_limit();

  run_state st(o);
  json::array url_list(urls.begin(), urls.end());
  json::object params{
      {"scenario", o.scenario},
      {"url", urls.size() == 1 ? json::value(urls.front()) : json::value(url_list)}};
  auto before = sample_process(o.server_pid);
  auto started = clock_type::now();
  double measured_s = 0;
  const std::string& sc = o.scenario;

  if (sc == "append" || sc == "batch") {
    int batch = sc == "batch" ? o.batch : 1;
    params["connections"] = o.connections;
    params["streams"] = o.streams;
    params["message_bytes"] = o.message_bytes;
    params["batch"] = batch;
    params["duration_s"] = o.duration_s;
    create_streams(st, o.streams);
    if (o.neighbour_bytes > 0) {
      params["neighbour_bytes"] = o.neighbour_bytes;
      run_all(st, [&] {
        asio::co_spawn(st.ioc, store_neighbour(&st, o.neighbour_bytes), asio::detached);
      });
    }
    before = sample_process(o.server_pid);
    started = clock_type::now();
    auto until = started + std::chrono::milliseconds(static_cast<long long>(o.duration_s * 1000));
    run_all(st, [&] {
      for (int i = 0; i < o.connections; ++i)
        asio::co_spawn(st.ioc, appender(&st, i, batch, until), asio::detached);
    });
    measured_s = std::chrono::duration<double>(clock_type::now() - started).count();
  } else if (sc == "delivery" || sc == "fanout") {
    int subscribers = sc == "fanout" ? o.subscribers : std::max(1, o.subscribers);
    long long count = static_cast<long long>(o.rate * o.duration_s);
    params["rate"] = o.rate;
    params["duration_s"] = o.duration_s;
    params["subscribers"] = subscribers;
    params["live"] = o.live;
    params["message_bytes"] = o.message_bytes;
    create_streams(st, 1);
    std::vector<long long> received(static_cast<std::size_t>(subscribers), 0);
    // The readers of a large fan-out are spread over threads, each with its own io_context and
    // tallies (merged below), so that one generator thread parsing every event does not become
    // what is measured. The writers and the deadline stay on `st`.
    int threads = o.reader_threads > 0 ? o.reader_threads
                  : sc == "fanout"
                      ? static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))
                      : 1;
    threads = std::min(threads, std::max(1, subscribers));
    params["reader_threads"] = threads;
    std::vector<std::unique_ptr<run_state>> extra;
    for (int t = 1; t < threads; ++t) {
      extra.push_back(std::make_unique<run_state>(o));
      extra.back()->epoch = st.epoch;  // one clock for send and receive times
    }
    // Room for every latency up front: growing one vector of millions mid-run stalls a reader
    // thread.
    st.lat.micros.reserve(static_cast<std::size_t>(count * subscribers / threads + count));
    for (auto& e : extra)
      e->lat.micros.reserve(static_cast<std::size_t>(count * subscribers / threads + count));
    auto state_of = [&](int reader) -> run_state* {
      int t = reader % threads;
      return t == 0 ? &st : extra[static_cast<std::size_t>(t - 1)].get();
    };
    before = sample_process(o.server_pid);
    started = clock_type::now();
    // A deadline, so a lost message ends the run instead of hanging it; cancelled once every
    // reader is done.
    auto deadline = std::make_shared<asio::steady_timer>(
        st.ioc, std::chrono::milliseconds(static_cast<long long>(o.duration_s * 1000) + 30000 +
                                          subscribers * 10));
    auto readers_left = std::make_shared<std::atomic<int>>(subscribers);
    std::atomic<int> subscribed{0};  // SSE readers whose response has begun
    auto reader_done = [deadline, readers_left, ioc = &st.ioc](std::exception_ptr) {
      if (--*readers_left == 0) asio::post(*ioc, [deadline] { deadline->cancel(); });
    };
    for (int i = 0; i < subscribers; ++i) {
      run_state* rs = state_of(i);
      if (o.live == "long-poll") {
        asio::co_spawn(rs->ioc, long_poll_reader(rs, "0", "-1", count), reader_done);
      } else {
        asio::co_spawn(rs->ioc, sse_reader(rs, "0", "-1", count, &received, i, true, &subscribed),
                       reader_done);
      }
    }
    std::vector<std::thread> reader_threads;
    for (auto& e : extra)
      reader_threads.emplace_back([rs = e.get()] { rs->ioc.run(); });
    run_all(st, [&] {
      // A writer waits for each answer before its next append, so a slow answer would lower
      // the offered rate: enough writers that each has time to spare (delivery: 1 ms per
      // append; fan-out, where answers compete with thousands of deliveries: 500 ms).
      double per_writer = sc == "fanout" ? 2 : 1000;
      int writers =
          o.writers > 0 ? o.writers : std::max(1, static_cast<int>(std::ceil(o.rate / per_writer)));
      params["writers"] = writers;
      // The first message goes out once every SSE reader's response has begun (a reader still
      // connecting would count its catch-up as delivery latency), or after a minute at most.
      auto gate = std::make_shared<asio::steady_timer>(st.ioc);
      auto gate_until = clock_type::now() + k_max_subscribe_wait;
      auto start_writers = [&, count, writers, rate = o.rate] {
        started = clock_type::now();  // measured from the first message on
        for (int w = 0; w < writers; ++w) {
          long long share = count / writers + (w < count % writers ? 1 : 0);
          asio::co_spawn(st.ioc, paced_writer(&st, "0", rate / writers, share, w, writers, started),
                         asio::detached);
        }
      };
      auto poll = std::make_shared<std::function<void(const beast::error_code&)>>();
      *poll = [&, gate, gate_until, poll, start_writers](const beast::error_code&) {
        bool live = o.live == "long-poll" || subscribed.load() >= subscribers;
        if (live || clock_type::now() >= gate_until || st.stop) {
          params["readers_subscribed_at_start"] = subscribed.load();
          *poll = nullptr;  // breaks the cycle through its own capture
          start_writers();
          return;
        }
        gate->expires_after(std::chrono::milliseconds(20));
        gate->async_wait(*poll);
      };
      gate->expires_after(std::chrono::milliseconds(100));
      gate->async_wait(*poll);
      deadline->async_wait([&st, &extra, deadline](const beast::error_code& ec) {
        if (ec == asio::error::operation_aborted) return;
        st.stop = true;
        st.ioc.stop();
        for (auto& e : extra) {
          e->stop = true;
          e->ioc.stop();
        }
      });
    });
    for (auto& t : reader_threads)
      t.join();
    for (auto& e : extra) {
      st.values += e->values;
      st.lat.micros.insert(st.lat.micros.end(), e->lat.micros.begin(), e->lat.micros.end());
      if (st.first_error.empty()) st.first_error = e->first_error;
      st.errors += e->errors;
    }
    measured_s = std::chrono::duration<double>(clock_type::now() - started).count();
    long long complete = std::count(received.begin(), received.end(), count);
    if (o.live != "long-poll") {
      params["subscribers_complete"] = complete;
      if (complete != subscribers) st.error("not every subscriber got every message");
    }
    params["messages_sent"] = count;
  } else if (sc == "catchup") {
    params["messages"] = o.messages;
    params["message_bytes"] = o.message_bytes;
    create_streams(st, 1);
    run_all(st, [&] {
      asio::co_spawn(st.ioc, prefill(&st, 0, 1, 1, o.messages, 1000), asio::detached);
    });
    st.values = 0;
    before = sample_process(o.server_pid);
    started = clock_type::now();
    run_all(st, [&] { asio::co_spawn(st.ioc, catch_up(&st, "0"), asio::detached); });
    measured_s = std::chrono::duration<double>(clock_type::now() - started).count();
    if (st.values != o.messages) st.error("catch-up read " + std::to_string(st.values) + " values");
  } else if (sc == "idle-sse") {
    params["subscribers"] = o.subscribers;
    create_streams(st, 1);
    before = sample_process(o.server_pid);
    started = clock_type::now();
    std::atomic<bool> measured{false};
    std::optional<process_sample> during;
    run_all(st, [&] {
      for (int i = 0; i < o.subscribers; ++i)
        asio::co_spawn(st.ioc, sse_reader(&st, "0", "now", 1, nullptr, i, false), asio::detached);
      auto settle = std::make_shared<asio::steady_timer>(
          st.ioc, std::chrono::milliseconds(2000 + o.subscribers / 2));
      settle->async_wait([&, settle](const beast::error_code&) {
        during = sample_process(o.server_pid);
        st.stop = true;
        st.ioc.stop();
      });
    });
    measured_s = std::chrono::duration<double>(clock_type::now() - started).count();
    if (before && during) {
      params["rss_before_kib"] = before->rss_kib;
      params["rss_during_kib"] = during->rss_kib;
      params["bytes_per_connection"] =
          static_cast<double>(during->rss_kib - before->rss_kib) * 1024.0 / o.subscribers;
    }
  } else if (sc == "storm") {
    params["subscribers"] = o.subscribers;
    params["messages"] = o.messages;
    params["message_bytes"] = o.message_bytes;
    // First, while this process has no thread but its own.
    auto probes = prober::start(o);
    if (!probes) {
      std::cerr << "storm: cannot start the /health prober: " << std::strerror(errno) << "\n";
      return 1;
    }
    create_streams(st, 1);
    run_all(st, [&] {
      asio::co_spawn(st.ioc, prefill(&st, 0, 1, 1, o.messages, 1000), asio::detached);
    });
    st.values = 0;
    // The reader that never reads: its socket's buffers fill and the server's writes to it
    // block, which must cost no one else anything.
    int stalled = connect_blocking(o, 4096, std::chrono::seconds(5));
    std::string stalled_request =
        "GET " + stream_target(o, "0") + "?offset=-1&live=sse HTTP/1.1\r\nHost: " + o.host + "\r\n";
    if (!o.token.empty()) stalled_request += "Authorization: Bearer " + o.token + "\r\n";
    if (stalled < 0 || !send_all(stalled, stalled_request + "\r\n")) {
      st.error("storm: the stalled reader could not connect");
    }
    int threads = o.reader_threads > 0
                      ? o.reader_threads
                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::min(threads, std::max(1, o.subscribers));
    params["reader_threads"] = threads;
    std::vector<std::unique_ptr<run_state>> extra;
    for (int t = 1; t < threads; ++t)
      extra.push_back(std::make_unique<run_state>(o));
    std::vector<long long> received(static_cast<std::size_t>(o.subscribers), 0);
    before = sample_process(o.server_pid);
    probes->go();
    started = clock_type::now();
    std::atomic<int> readers_left{o.subscribers};
    auto deadline = std::chrono::milliseconds(120'000 + o.subscribers * 20);
    for (int i = 0; i < o.subscribers; ++i) {
      int t = i % threads;
      run_state* rs = t == 0 ? &st : extra[static_cast<std::size_t>(t - 1)].get();
      asio::co_spawn(rs->ioc, sse_reader(rs, "0", "-1", o.messages, &received, i, false),
                     [&readers_left](std::exception_ptr) { --readers_left; });
    }
    std::vector<std::thread> reader_threads;
    for (auto& e : extra)
      reader_threads.emplace_back([rs = e.get()] { rs->ioc.run(); });
    // The main thread runs its share of the readers; a watchdog ends the run at the deadline.
    std::vector<run_state*> all{&st};
    for (auto& e : extra)
      all.push_back(e.get());
    std::atomic<bool> timed_out{false};
    std::thread watchdog([&] {
      auto until = clock_type::now() + deadline;
      while (readers_left.load() > 0 && clock_type::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      timed_out = readers_left.load() > 0;
      for (run_state* rs : all) {
        rs->stop = true;
        rs->ioc.stop();
      }
    });
    st.ioc.run();
    watchdog.join();
    for (auto& t : reader_threads)
      t.join();
    if (timed_out) {
      st.error("storm: not every reader finished within " +
               std::to_string(deadline.count() / 1000) + " s");
    }
    measured_s = std::chrono::duration<double>(clock_type::now() - started).count();
    std::vector<probe_sample> samples = probes->finish();
    if (stalled >= 0) ::close(stalled);
    for (auto& e : extra) {
      st.values += e->values;
      if (st.first_error.empty()) st.first_error = e->first_error;
      st.errors += e->errors;
    }
    long long complete = std::count(received.begin(), received.end(), o.messages);
    params["readers_complete"] = complete;
    if (complete != o.subscribers) {
      st.error("storm: " + std::to_string(o.subscribers - complete) +
               " readers did not get every message");
    }
    // /health: every probe, as latency; failures counted apart.
    long long failures = 0;
    long long rss_max = 0;
    for (const auto& s : samples) {
      if (s.micros < 0) {
        ++failures;
      } else {
        st.lat.add(std::chrono::microseconds(s.micros));
      }
      rss_max = std::max(rss_max, s.rss_kib);
    }
    params["health_probes"] = samples.size();
    params["health_failures"] = failures;
    if (failures > 0) st.error("storm: " + std::to_string(failures) + " /health probes failed");
    if (before) {
      params["rss_before_kib"] = before->rss_kib;
      params["rss_max_kib"] = rss_max;
      params["rss_growth_kib"] = std::max<long long>(0, rss_max - before->rss_kib);
    }
  } else if (sc == "prefill") {
    params["messages"] = o.messages;
    params["streams"] = o.streams;
    create_streams(st, o.streams);
    started = clock_type::now();
    run_all(st, [&] {
      int conns = std::min(o.connections, o.streams);
      for (int i = 0; i < conns; ++i)
        asio::co_spawn(st.ioc, prefill(&st, i, conns, o.streams, o.messages, 1000), asio::detached);
    });
    measured_s = std::chrono::duration<double>(clock_type::now() - started).count();
  } else {
    std::cerr << "unknown scenario " << sc << "\n";
    return 2;
  }

  auto after = sample_process(o.server_pid);
  json::object out = params;
  out["seconds"] = measured_s;
  out["requests"] = st.ops;
  out["values"] = st.values;
  out["requests_per_s"] = measured_s > 0 ? static_cast<double>(st.ops) / measured_s : 0;
  out["values_per_s"] = measured_s > 0 ? static_cast<double>(st.values) / measured_s : 0;
  out["latency"] = st.lat.summary();
  out["errors"] = st.errors;
  if (!st.first_error.empty()) out["first_error"] = st.first_error;
  if (before && after) {
    out["server_cpu_s"] = after->cpu_seconds - before->cpu_seconds;
    out["server_rss_kib"] = after->rss_kib;
    out["server_peak_kib"] = after->peak_kib;
    out["server_voluntary_switches"] = after->voluntary_switches - before->voluntary_switches;
    out["server_involuntary_switches"] = after->involuntary_switches - before->involuntary_switches;
  }
  std::cout << json::serialize(out) << std::endl;
  return st.errors == 0 ? 0 : 1;
}
