#include "storage/postgres/notifier.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "storage/postgres/scratch_cluster.hpp"

namespace ordo::postgres {
namespace {

using namespace std::chrono_literals;

TEST(NotifyPayload, NamesTheNodeAndEachStreamOnce) {
  EXPECT_EQ(notify_payload("n1", {7, 3, 7, 12}), "n1 3,7,12");
  auto hint = parse_notify_payload("n1 3,7,12");
  ASSERT_TRUE(hint);
  EXPECT_EQ(hint->from_node, "n1");
  EXPECT_FALSE(hint->all);
  EXPECT_EQ(hint->streams, (std::vector<std::int64_t>{3, 7, 12}));
}

TEST(NotifyPayload, TooManyStreamsForOnePayloadMeanRecheckEverything) {
  std::vector<std::int64_t> many;
  for (std::int64_t i = 1; i <= 2000; ++i)
    many.push_back(1'000'000 + i);
  std::string payload = notify_payload("n1", many);
  EXPECT_EQ(payload, "n1 *");
  auto hint = parse_notify_payload(payload);
  ASSERT_TRUE(hint);
  EXPECT_TRUE(hint->all);
  EXPECT_TRUE(hint->streams.empty());
  // Just under the limit is still a list.
  EXPECT_EQ(notify_payload("n1", {1, 2, 3}, 8), "n1 1,2,3");
  EXPECT_EQ(notify_payload("n1", {1, 2, 3}, 7), "n1 *");
}

TEST(NotifyPayload, AnythingElseIsNotAHint) {
  for (const char* bad :
       {"", "n1", " 1,2", "n1 ", "n1 1,,2", "n1 1,", "n1 -1", "n1 0", "n1 x", "n1 1;2"}) {
    EXPECT_FALSE(parse_notify_payload(bad)) << "'" << bad << "'";
  }
}

// The hints a listener delivered, in order, waited for with a deadline.
class hint_log {
 public:
  void add(const wake_hint& h) {
    std::lock_guard lock(mu_);
    hints_.push_back(h);
    cv_.notify_all();
  }
  // The next hint, or nullopt after `within`.
  std::optional<wake_hint> next(std::chrono::milliseconds within = 5s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, within, [&] { return !hints_.empty(); })) return std::nullopt;
    wake_hint h = hints_.front();
    hints_.pop_front();
    return h;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<wake_hint> hints_;
};

using ListenerTest = testing::postgres_test;

TEST_F(ListenerTest, DeliversCommittedNotificationsInCommitOrderAndNoRolledBackOne) {
  hint_log log;
  auto l =
      listener::start({.url = url(), .safety_poll = 60s}, [&](const wake_hint& h) { log.add(h); });
  ASSERT_TRUE(l);
  auto first = log.next();
  ASSERT_TRUE(first);
  EXPECT_TRUE(first->all) << "a recheck of everything once connected";
  EXPECT_TRUE(l->connected());

  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  auto notify = [&](const std::string& payload) {
    return db->query("SELECT pg_notify($1, $2)", {std::string(k_wake_channel), payload});
  };
  ASSERT_TRUE(db->exec("BEGIN"));
  ASSERT_TRUE(notify(notify_payload("a", {1})));
  ASSERT_TRUE(db->exec("ROLLBACK"));
  ASSERT_TRUE(db->exec("BEGIN"));
  ASSERT_TRUE(notify(notify_payload("b", {5, 2})));
  ASSERT_TRUE(db->exec("COMMIT"));
  ASSERT_TRUE(notify(notify_payload("c", {9})));  // a transaction of its own
  ASSERT_TRUE(notify("from a newer ordo, perhaps"));

  auto b = log.next();
  ASSERT_TRUE(b);
  EXPECT_EQ(b->from_node, "b");
  EXPECT_EQ(b->streams, (std::vector<std::int64_t>{2, 5}));
  auto c = log.next();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->from_node, "c");
  auto unknown = log.next();
  ASSERT_TRUE(unknown);
  EXPECT_TRUE(unknown->all) << "a payload it cannot read still means: recheck";
  EXPECT_FALSE(log.next(300ms)) << "the rolled-back notification must never arrive";
}

TEST_F(ListenerTest, ReconnectsAfterLosingItsConnectionAndRechecksEverything) {
  hint_log log;
  auto l =
      listener::start({.url = url(), .safety_poll = 60s}, [&](const wake_hint& h) { log.add(h); });
  ASSERT_TRUE(l);
  ASSERT_TRUE(log.next());
  EXPECT_EQ(l->connects(), 1u);

  auto admin = connect();
  ASSERT_TRUE(admin) << admin.error().message;
  auto killed = admin->query_int64(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = 'ordo listener' AND datname = current_database()");
  ASSERT_TRUE(killed) << killed.error().message;
  ASSERT_EQ(*killed, 1);

  auto again = log.next();
  ASSERT_TRUE(again) << "no recheck after the reconnect";
  EXPECT_TRUE(again->all);
  EXPECT_EQ(l->connects(), 2u);
  EXPECT_TRUE(l->connected());
  // And it listens again.
  ASSERT_TRUE(admin->query("SELECT pg_notify($1, $2)",
                           {std::string(k_wake_channel), notify_payload("n", {4})}));
  auto after = log.next();
  ASSERT_TRUE(after);
  EXPECT_EQ(after->streams, (std::vector<std::int64_t>{4}));
}

TEST_F(ListenerTest, TheSafetyPollRechecksEverythingWhenNothingArrives) {
  hint_log log;
  auto l = listener::start({.url = url(), .safety_poll = 100ms},
                           [&](const wake_hint& h) { log.add(h); });
  ASSERT_TRUE(l);
  for (int i = 0; i < 3; ++i) {
    auto h = log.next(2s);
    ASSERT_TRUE(h) << "poll " << i;
    EXPECT_TRUE(h->all);
  }
}

TEST(Listener, KeepsTryingAnUnreachableDatabaseAndStopsAtOnce) {
  std::atomic<int> calls = 0;
  auto l = listener::start(
      {.url = "postgresql://ordo@/postgres?host=/nonexistent-ordo-socket-dir&port=1",
       .max_backoff = 200ms},
      [&](const wake_hint&) { ++calls; });
  ASSERT_TRUE(l);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(l->connected());
  auto started = std::chrono::steady_clock::now();
  l.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ordo::postgres
