// Harness: whole requests through the real server, in process: the bytes of an input are what a
// client sends on one connection (any number of requests, pipelined), served by http::server
// exactly as an accepted connection is (server::serve_connected()): the request loop and its
// limits, the head checks, dispatch() and its route table, the stream handlers, long-polls and
// SSE, the session API, the change feed, the dashboard, /health and /metrics, over a real
// stream engine and session service (fuzz/engine_fixture.hpp). The client's end of a socketpair
// is this harness, so no network and no port is involved and libFuzzer sees the server's code.
//
// The server runs with short timeouts (a long-poll waits 20 ms, an SSE response lasts 50 ms) so
// that an input ends quickly; a few streams, a project and a session exist from the start, so
// seeds and mutations reach existing resources as well as missing ones.
//
// Invariants:
//   - the connection ends soon after the client has sent everything and shut its side (no hang);
//   - no answer is 500 (an internal error is a bug); any other 5xx is one the server may give
//     (501 unsupported Transfer-Encoding, 503 busy or stopping, 507 storage full);
//   - an error answer (4xx, 5xx) with a JSON body parses and names an error code;
//   - the answers read as HTTP/1.1 responses, one per request the harness can frame (a HEAD's
//     answer has no body); checking stops where the harness cannot follow the framing.
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz/check.hpp"
#include "fuzz/engine_fixture.hpp"
#include "http/server.hpp"

using ordo::fuzz::check;
namespace bhttp = boost::beast::http;

namespace {

// How long an input's connection may take to end after the harness shut its side.
constexpr auto k_end_deadline = std::chrono::seconds(8);

// The server and the thread that runs it; stopped at exit (stop_server()), before the engine
// fixture and spdlog, made earlier, are destroyed.
ordo::http::server* g_server = nullptr;
std::thread* g_server_thread = nullptr;

void stop_server() {
  g_server->stop();
  g_server_thread->join();
  delete g_server_thread;
  delete g_server;
}

// Sends `input` on a new connection and returns everything the server wrote until it closed.
std::string exchange(std::string_view input) {
  int fds[2];
  check(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
  g_server->serve_connected(fds[0]);
  int fd = fds[1];
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string out;
  std::size_t sent = 0;
  bool shut = false;
  auto deadline = std::chrono::steady_clock::now() + k_end_deadline;
  char buf[65536];
  for (;;) {
    if (!shut && sent == input.size()) {
      ::shutdown(fd, SHUT_WR);
      shut = true;
      deadline = std::chrono::steady_clock::now() + k_end_deadline;
    }
    pollfd p{fd, static_cast<short>(POLLIN | (shut ? 0 : POLLOUT)), 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    check(left.count() > 0, "the connection ends within 8 s of the client's end");
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready <= 0) continue;
    if (p.revents & POLLOUT) {
      ssize_t n = ::send(fd, input.data() + sent, input.size() - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<std::size_t>(n);
      if (n < 0 && errno != EAGAIN) sent = input.size();  // the server closed: stop sending
    }
    if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n == 0) break;
      if (n < 0 && errno != EAGAIN) break;  // reset by the server
      if (n > 0) out.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return out;
}

// A buffer holding `bytes`.
boost::beast::flat_buffer buffer_of(std::string_view bytes) {
  boost::beast::flat_buffer buffer;
  boost::asio::buffer_copy(buffer.prepare(bytes.size()), boost::asio::buffer(bytes));
  buffer.commit(bytes.size());
  return buffer;
}

// Feeds one message from `buffer` to `parser` (eager: the body too), consuming what it used;
// the parser's error, need_more when the buffer ran out first.
template <class Parser>
boost::beast::error_code feed(Parser& parser, boost::beast::flat_buffer& buffer) {
  parser.eager(true);
  boost::beast::error_code ec;
  std::size_t used = parser.put(buffer.data(), ec);
  buffer.consume(used);
  while (!ec && !parser.is_done() && used > 0 && buffer.size() > 0) {
    used = parser.put(buffer.data(), ec);
    buffer.consume(used);
  }
  return ec;
}

// The methods of the requests in `input` that the harness can frame, in order: whether each is
// a HEAD (its answer carries no body).
std::vector<bool> request_heads(std::string_view input) {
  std::vector<bool> heads;
  auto buffer = buffer_of(input);
  while (buffer.size() > 0) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(64 << 10);
    parser.body_limit(1 << 20);
    auto ec = feed(parser, buffer);
    if (!parser.is_header_done()) break;
    heads.push_back(parser.get().method() == bhttp::verb::head);
    if (ec || !parser.is_done()) break;
  }
  return heads;
}

void check_answers(std::string_view input, const std::string& out) {
  auto heads = request_heads(input);
  auto buffer = buffer_of(out);
  std::size_t answered = 0;
  while (buffer.size() > 0) {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(64 << 20);
    // Past the requests the harness could frame it does not know which answer is a HEAD's.
    if (answered >= heads.size()) break;
    if (heads[answered]) parser.skip(true);
    auto ec = feed(parser, buffer);
    if (ec && ec != bhttp::error::need_more) {
      // The server writes nothing Beast cannot read; unless the answer was cut by a reset.
      check(false, "the server's answers read as HTTP/1.1 responses");
    }
    if (!parser.is_done()) break;  // an SSE stream or an answer cut at the close
    auto& res = parser.get();
    int status = res.result_int();
    check(status != 500, "no answer is 500 internal_error");
    check(status >= 100 && status < 600, "the status is a known class");
    if (status == 100) continue;  // 100 Continue comes before the request's answer
    if (status >= 400 && !res.body().empty() &&
        res[bhttp::field::content_type].starts_with("application/json")) {
      boost::system::error_code jec;
      auto v = boost::json::parse(res.body(), jec);
      check(!jec, "an error's JSON body parses");
      auto* o = v.if_object();
      check(o && o->contains("error") && o->at("error").is_object() &&
                o->at("error").as_object().contains("code"),
            "an error's body names its code");
    }
    ++answered;
  }
}

// What every input finds already there.
void make_resources() {
  const char* setup =
      "PUT /v1/stream/f/text HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
      "Content-Length: 5\r\n\r\nhello"
      "PUT /v1/stream/f/json HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "Content-Length: 7\r\n\r\n[1,2,3]"
      "PUT /v1/stream/f/closed HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\n"
      "Stream-Closed: true\r\nContent-Length: 1\r\n\r\nx"
      "POST /v1/projects HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "Content-Length: 28\r\n\r\n{\"id\":\"fz\",\"name\":\"Fuzzing\"}"
      "POST /v1/projects/fz/sessions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}";
  auto out = exchange(setup);
  check(out.find("HTTP/1.1 201") != std::string::npos, "the harness's resources are created");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
  ordo::fuzz::disable_leak_checks(argc, argv);
  auto& f = ordo::fuzz::open_fixture(true);
  ordo::http::server_options o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 1;
  o.max_body_bytes = 1 << 20;
  o.long_poll_timeout = std::chrono::milliseconds(20);
  o.sse_heartbeat_interval = std::chrono::milliseconds(10);
  o.sse_max_duration = std::chrono::milliseconds(50);
  o.idle_timeout = std::chrono::milliseconds(500);
  o.header_timeout = std::chrono::milliseconds(500);
  o.body_timeout = std::chrono::milliseconds(500);
  o.catch_up_wait_timeout = std::chrono::milliseconds(500);
  o.shutdown_timeout = std::chrono::milliseconds(100);
  auto auth = ordo::auth::authenticator::open(*ordo::auth::parse_auth_mode("none"));
  check(static_cast<bool>(auth), "authentication off");
  o.auth = std::move(*auth);
  auto s = ordo::http::server::bind(std::move(o), *f.engine, *f.service);
  check(static_cast<bool>(s), "the server binds");
  g_server = s->release();
  g_server_thread = new std::thread([] { g_server->run(); });
  std::atexit(stop_server);
  make_resources();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  check_answers(input, exchange(input));
  return 0;
}
