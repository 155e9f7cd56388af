// The C++ client against the real server: `ordo serve` on a loopback port, a real SQLite file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "client/client.hpp"
#include "client/producer.hpp"
#include "client/reader.hpp"

namespace ordo::client {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// `ordo serve` in its own data directory; its output goes to a log file beside it.
class test_server {
 public:
  explicit test_server(fs::path dir, int port = 0) : dir_(std::move(dir)) { start(port); }
  ~test_server() { kill(SIGKILL); }

  void start(int port) {
    fs::create_directories(dir_);
    std::string log = (dir_ / "server.log").string();
    fs::remove(log);
    pid_ = ::fork();
    if (pid_ == 0) {
      int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string port_text = std::to_string(port), data = dir_.string();
      ::execl(ORDO_BINARY, ORDO_BINARY, "serve", "--port", port_text.c_str(), "--data-dir",
              data.c_str(), "--long-poll-timeout", "2s", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    std::regex listening(R"(listening address=\S+ port=(\d+))");
    for (int i = 0; i < 1000; ++i) {
      std::ifstream in(log);
      std::stringstream text;
      text << in.rdbuf();
      std::smatch m;
      std::string s = text.str();
      if (std::regex_search(s, m, listening)) {
        port_ = std::stoi(m[1]);
        return;
      }
      std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "ordo did not start";
  }

  void kill(int signal) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  void restart() {
    kill(SIGKILL);
    start(port_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  client_options options() const { return client_options{url(), 5s, {}}; }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

class client_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("ordo-client-test-" + std::to_string(std::random_device{}()));
    server_ = std::make_unique<test_server>(dir_);
    auto c = stream_client::connect(server_->options());
    ASSERT_TRUE(c);
    client_ = std::move(*c);
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
    fs::remove_all(dir_);
  }

  // Every JSON value of a stream, by plain reads.
  std::vector<std::string> read_all(const std::string& path) {
    std::vector<std::string> out;
    std::string offset = "-1";
    for (;;) {
      auto page = client_->read(path, offset);
      EXPECT_TRUE(page) << page.error().message;
      if (!page) return out;
      out.insert(out.end(), page->messages.begin(), page->messages.end());
      offset = page->next_offset;
      if (page->up_to_date) return out;
    }
  }

  fs::path dir_;
  std::unique_ptr<test_server> server_;
  std::unique_ptr<stream_client> client_;
};

TEST(client_url, only_http_and_https_urls_with_a_host_are_accepted) {
  auto a = parse_server_url("http://127.0.0.1:4437");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, "4437");
  EXPECT_FALSE(a->tls);
  auto b = parse_server_url("http://example.org/ordo/");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->port, "80");
  EXPECT_EQ(b->prefix, "/ordo");
  auto c = parse_server_url("https://example.org");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->tls);
  EXPECT_EQ(c->port, "443");
  auto d = parse_server_url("https://localhost:8443/ordo");
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->tls);
  EXPECT_EQ(d->port, "8443");
  for (const char* bad :
       {"ftp://x", "127.0.0.1:4437", "http://", "https://", "http://h/?q=1", ""}) {
    auto r = parse_server_url(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, "invalid_url");
  }
}

TEST(client_retry, an_untrusted_server_certificate_is_not_retried) {
  EXPECT_FALSE(is_retryable(
      make_failure(failure_kind::unavailable, std::string(k_tls_verify_failed), "untrusted")));
  EXPECT_TRUE(is_retryable(make_failure(failure_kind::unavailable, std::string(k_connection_failed),
                                        "handshake failed")));
}

TEST(client_https, a_ca_file_that_does_not_load_fails_the_request_naming_it) {
  auto c = stream_client::connect(
      {.url = "https://127.0.0.1:1", .tls = {.ca_file = "/nonexistent/ca.pem"}});
  ASSERT_TRUE(c);
  auto r = (*c)->head("s");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "tls_ca_invalid");
  EXPECT_NE(r.error().message.find("/nonexistent/ca.pem"), std::string::npos);
  EXPECT_FALSE(is_retryable(r.error()));
}

TEST(client_retry, backoff_grows_to_its_cap_with_jitter) {
  retry_policy p{100ms, 1000ms, 0, 0ms};
  std::mt19937_64 rng(1);
  for (int attempt = 0; attempt < 12; ++attempt) {
    auto cap = std::min<std::int64_t>(100LL << std::min(attempt, 20), 1000);
    for (int i = 0; i < 50; ++i) {
      auto d = p.delay(attempt, rng).count();
      EXPECT_GE(d, 0);
      EXPECT_LE(d, cap);
    }
  }
}

TEST(client_retry, retry_after_lengthens_the_wait_up_to_its_cap_and_the_policy_runs_out) {
  retry_policy p{10ms, 20ms, 3, 0ms};
  std::mt19937_64 rng(1);
  failure busy = make_failure(failure_kind::unavailable, "storage_busy", "busy");
  EXPECT_LE(p.wait_before(0, busy, rng), 20ms);
  busy.with("retry_after", "2");
  EXPECT_EQ(p.wait_before(0, busy, rng), 2000ms);
  failure huge = make_failure(failure_kind::unavailable, "x", "x").with("retry_after", "86400");
  EXPECT_EQ(p.wait_before(0, huge, rng), std::chrono::milliseconds(k_max_retry_after));
  failure junk = make_failure(failure_kind::unavailable, "x", "x").with("retry_after", "soon");
  EXPECT_LE(p.wait_before(0, junk, rng), 20ms);
  EXPECT_FALSE(p.exhausted(2, 0ms));
  EXPECT_TRUE(p.exhausted(3, 0ms));
  retry_policy timed{10ms, 20ms, 0, 100ms};
  EXPECT_FALSE(timed.exhausted(1000, 99ms));
  EXPECT_TRUE(timed.exhausted(1, 100ms));
}

TEST_F(client_test, streams_are_created_appended_read_closed_and_deleted) {
  auto created = client_->create("a/json", {.content_type = "application/json"});
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->content_type, "application/json");
  ASSERT_TRUE(client_->append("a/json", R"({"n":1})"));
  ASSERT_TRUE(client_->append("a/json", R"([{"n":2},{"n":3}])"));
  EXPECT_EQ(read_all("a/json"),
            (std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"}));
  auto head = client_->head("a/json");
  ASSERT_TRUE(head);
  EXPECT_FALSE(head->closed);
  auto closed = client_->close("a/json");
  ASSERT_TRUE(closed);
  auto refused = client_->append("a/json", "{}");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, "stream_closed");
  EXPECT_TRUE(client_->head("a/json")->closed);

  ASSERT_TRUE(client_->create("a/bytes"));
  std::string binary("\x00\x01\xff\n", 4);
  ASSERT_TRUE(client_->append("a/bytes", binary));
  auto page = client_->read("a/bytes", "-1");
  ASSERT_TRUE(page);
  ASSERT_EQ(page->messages.size(), 1u);
  EXPECT_EQ(page->messages[0], binary);

  ASSERT_TRUE(client_->remove("a/bytes"));
  auto gone = client_->head("a/bytes");
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, "stream_not_found");
  EXPECT_EQ(gone.error().kind, failure_kind::not_found);
}

TEST_F(client_test, a_producer_delivers_every_message_once_in_order) {
  ASSERT_TRUE(client_->create("p", {.content_type = "application/json"}));
  producer_options o;
  o.path = "p";
  o.producer_id = "writer-1";
  auto p = producer::start(server_->options(), o);
  ASSERT_TRUE(p) << p.error().message;
  std::vector<ticket> tickets;
  for (int i = 0; i < 10000; ++i) {
    auto t = (*p)->append("{\"i\":" + std::to_string(i) + "}");
    ASSERT_TRUE(t) << t.error().message;
    tickets.push_back(*t);
  }
  ASSERT_TRUE((*p)->flush(60s));
  for (const auto& t : tickets)
    ASSERT_EQ(t->state(), message_state::acknowledged);
  EXPECT_FALSE(tickets.back()->offset().empty());
  auto stats = (*p)->stats();
  EXPECT_EQ(stats.acknowledged, 10000u);
  EXPECT_LT(stats.batches, 10000u);  // batched
  EXPECT_TRUE((*p)->close(5s));
  auto values = read_all("p");
  ASSERT_EQ(values.size(), 10000u);
  for (int i = 0; i < 10000; ++i)
    ASSERT_EQ(values[i], "{\"i\":" + std::to_string(i) + "}");
}

TEST_F(client_test, a_producer_retries_through_a_server_restart_without_loss_or_duplicates) {
  ASSERT_TRUE(client_->create("r", {.content_type = "application/json"}));
  producer_options o;
  o.path = "r";
  o.producer_id = "writer-r";
  o.retry.max_delay = 200ms;
  auto p = producer::start(server_->options(), o);
  ASSERT_TRUE(p) << p.error().message;
  for (int i = 0; i < 3000; ++i) {
    if (i == 1000) server_->restart();  // SIGKILL, then the same port and data directory
    ASSERT_TRUE((*p)->append(std::to_string(i)));
  }
  ASSERT_TRUE((*p)->flush(60s));
  EXPECT_EQ((*p)->stats().acknowledged, 3000u);
  client_->cancel();
  client_ = std::move(stream_client::connect(server_->options()).value());
  auto values = read_all("r");
  ASSERT_EQ(values.size(), 3000u);
  for (int i = 0; i < 3000; ++i)
    ASSERT_EQ(values[i], std::to_string(i));
}

TEST_F(client_test, a_full_producer_queue_fails_at_once_or_after_waiting_as_chosen) {
  // A server that is not there: nothing is acknowledged, so the queue fills.
  client_options nowhere{"http://127.0.0.1:1", 200ms, {}};
  producer_options o;
  o.path = "q";
  o.producer_id = "w";
  o.content_type = "text/plain";
  o.max_pending_messages = 3;
  o.on_full = when_full::fail;
  auto p = producer::start(nowhere, o);
  ASSERT_TRUE(p) << p.error().message;
  std::vector<ticket> tickets;
  for (int i = 0; i < 3; ++i)
    tickets.push_back(*(*p)->append("x"));
  auto full = (*p)->append("x");
  ASSERT_FALSE(full);
  EXPECT_EQ(full.error().code, "queue_full");
  for (const auto& t : tickets)
    EXPECT_EQ(t->state(), message_state::pending);
  EXPECT_EQ((*p)->stats().pending_messages, 3u);
  EXPECT_FALSE((*p)->close(100ms));
  for (const auto& t : tickets) {
    EXPECT_EQ(t->state(), message_state::failed);
    EXPECT_EQ(t->error().code, "producer_closed");
  }

  o.on_full = when_full::wait;
  o.full_timeout = 100ms;
  o.max_pending_messages = 100;
  o.max_pending_bytes = 10;
  auto w = producer::start(nowhere, o);
  ASSERT_TRUE(w);
  ASSERT_TRUE((*w)->append("12345678"));
  auto waited = (*w)->append("123");
  ASSERT_FALSE(waited);
  EXPECT_EQ(waited.error().code, "queue_full_timeout");
  auto huge = (*w)->append(std::string(11, 'x'));
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, "message_too_large");
}

TEST_F(client_test, a_producer_with_a_given_epoch_is_fenced_by_a_newer_one) {
  ASSERT_TRUE(client_->create("f", {.content_type = "text/plain"}));
  producer_options o;
  o.path = "f";
  o.producer_id = "same";
  o.epoch = 5;
  auto old_one = producer::start(server_->options(), o);
  ASSERT_TRUE(old_one);
  ASSERT_TRUE((*(*old_one)->append("a"))->wait(10s));
  o.epoch = 6;
  auto new_one = producer::start(server_->options(), o);
  ASSERT_TRUE(new_one);
  ASSERT_TRUE((*(*new_one)->append("b"))->wait(10s));
  auto t = (*old_one)->append("c");
  ASSERT_TRUE(t);
  ASSERT_TRUE((*t)->wait(10s));
  EXPECT_EQ((*t)->state(), message_state::failed);
  EXPECT_EQ((*t)->error().code, "producer_fenced");
  auto later = (*old_one)->append("d");
  ASSERT_FALSE(later);
  EXPECT_EQ(later.error().code, "producer_fenced");
  auto page = client_->read("f", "-1");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->messages, std::vector<std::string>{"ab"});
}

TEST_F(client_test, an_auto_claiming_producer_restarted_is_not_taken_for_a_duplicate) {
  ASSERT_TRUE(client_->create("c", {.content_type = "application/json"}));
  for (int round = 0; round < 3; ++round) {
    producer_options o;
    o.path = "c";
    o.producer_id = "restarting";
    auto p = producer::start(server_->options(), o);
    ASSERT_TRUE(p);
    ASSERT_TRUE((*(*p)->append(std::to_string(round)))->wait(10s));
    EXPECT_TRUE((*p)->close(5s));
  }
  EXPECT_EQ(read_all("c"), (std::vector<std::string>{"0", "1", "2"}));
}

// Follows `path` on a thread, collecting what a reader delivers.
struct follower {
  follower(const client_options& c, reader_options o) {
    auto r = reader::open(c, std::move(o));
    EXPECT_TRUE(r);
    r_ = std::move(*r);
    thread_ = std::thread([this] {
      outcome_ = r_->run([this](const read_event& e) {
        std::lock_guard lock(mu_);
        events_.push_back(e);
        if (e.what == read_event::kind::messages) {
          messages_.insert(messages_.end(), e.messages.begin(), e.messages.end());
        }
        return true;
      });
      done_ = true;
    });
  }
  ~follower() {
    r_->cancel();
    thread_.join();
  }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds timeout = 20s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      if (messages().size() >= n) return true;
      std::this_thread::sleep_for(5ms);
    }
    return false;
  }
  std::size_t count(read_event::kind k) {
    std::lock_guard lock(mu_);
    return static_cast<std::size_t>(std::count_if(
        events_.begin(), events_.end(), [&](const read_event& e) { return e.what == k; }));
  }

  std::unique_ptr<reader> r_;
  std::thread thread_;
  std::mutex mu_;
  std::vector<read_event> events_;
  std::vector<std::string> messages_;
  std::optional<result<stop_reason>> outcome_;
  std::atomic<bool> done_{false};
};

std::vector<std::string> numbers(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i)
    out.push_back(std::to_string(i));
  return out;
}

class reader_modes : public client_test, public ::testing::WithParamInterface<live_mode> {};

TEST_P(reader_modes, a_reader_catches_up_follows_live_and_ends_when_the_stream_closes) {
  ASSERT_TRUE(client_->create("live", {.content_type = "application/json"}));
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(client_->append("live", std::to_string(i), {.content_type = "application/json"}));
  follower f(server_->options(), reader_options{.path = "live", .live = GetParam()});
  ASSERT_TRUE(f.wait_for(50));
  for (int i = 50; i < 100; ++i)
    ASSERT_TRUE(client_->append("live", std::to_string(i), {.content_type = "application/json"}));
  ASSERT_TRUE(f.wait_for(100));
  ASSERT_TRUE(client_->close("live"));
  for (int i = 0; i < 500 && !f.done_; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(f.done_);
  ASSERT_TRUE(*f.outcome_);
  EXPECT_EQ(**f.outcome_, stop_reason::closed);
  EXPECT_EQ(f.messages(), numbers(0, 100));
  EXPECT_EQ(f.count(read_event::kind::closed), 1u);
}

TEST_P(reader_modes, a_reader_resumes_after_a_server_restart_without_loss_or_duplicates) {
  ASSERT_TRUE(client_->create("resume", {.content_type = "application/json"}));
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(client_->append("resume", std::to_string(i), {.content_type = "application/json"}));
  reader_options o{.path = "resume", .live = GetParam()};
  o.retry.max_delay = 100ms;
  follower f(server_->options(), o);
  ASSERT_TRUE(f.wait_for(20));
  server_->restart();
  client_ = std::move(stream_client::connect(server_->options()).value());
  for (int i = 20; i < 60; ++i)
    ASSERT_TRUE(client_->append("resume", std::to_string(i), {.content_type = "application/json"}));
  ASSERT_TRUE(f.wait_for(60));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(f.messages(), numbers(0, 60));
  EXPECT_GE(f.r_->stats().reconnects, 1u);
}

INSTANTIATE_TEST_SUITE_P(live, reader_modes,
                         ::testing::Values(live_mode::sse, live_mode::long_poll,
                                           live_mode::automatic));

TEST_F(client_test, a_reader_resuming_with_an_offset_from_before_a_recreation_resyncs) {
  ASSERT_TRUE(client_->create("again", {.content_type = "text/plain"}));
  ASSERT_TRUE(client_->append("again", "old;"));
  auto first = reader::open(server_->options(), {.path = "again", .live = live_mode::none});
  ASSERT_TRUE(first);
  std::vector<read_event> seen;
  auto stopped = (*first)->run([&](const read_event& e) {
    seen.push_back(e);
    return true;
  });
  ASSERT_TRUE(stopped);
  EXPECT_EQ(*stopped, stop_reason::caught_up);
  std::string saved = (*first)->offset();

  ASSERT_TRUE(client_->remove("again"));
  ASSERT_TRUE(client_->create("again", {.content_type = "text/plain"}));
  ASSERT_TRUE(client_->append("again", "new;"));
  auto second =
      reader::open(server_->options(), {.path = "again", .offset = saved, .live = live_mode::none});
  ASSERT_TRUE(second);
  std::vector<std::string> messages;
  int resyncs = 0;
  ASSERT_TRUE((*second)->run([&](const read_event& e) {
    if (e.what == read_event::kind::resync) {
      ++resyncs;
      EXPECT_EQ(e.error.code, "offset_not_for_stream");
      messages.clear();
    }
    if (e.what == read_event::kind::messages) {
      messages.insert(messages.end(), e.messages.begin(), e.messages.end());
    }
    return true;
  }));
  EXPECT_EQ(resyncs, 1);
  EXPECT_EQ(messages, std::vector<std::string>{"new;"});

  // Without restart_on_resync the reader stops with the 410.
  auto strict = reader::open(
      server_->options(),
      {.path = "again", .offset = saved, .live = live_mode::none, .restart_on_resync = false});
  auto outcome = (*strict)->run([](const read_event&) { return true; });
  ASSERT_FALSE(outcome);
  EXPECT_EQ(outcome.error().kind, failure_kind::gone);
}

TEST_F(client_test, a_binary_stream_is_followed_over_sse_in_base64) {
  ASSERT_TRUE(client_->create("bin", {.content_type = "application/octet-stream"}));
  follower f(server_->options(), reader_options{.path = "bin", .live = live_mode::sse});
  std::string bytes("\x00\xff\x10\n\n", 5);
  std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(client_->append("bin", bytes));
  ASSERT_TRUE(f.wait_for(1));
  EXPECT_EQ(f.messages(), std::vector<std::string>{bytes});
}

}  // namespace
}  // namespace ordo::client
