#include "storage/postgres/leadership.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "storage/postgres/scratch_cluster.hpp"

namespace ordo::postgres {
namespace {

using namespace std::chrono_literals;

// Waits up to `within` for `done()`.
template <class F>
bool eventually(F done, std::chrono::milliseconds within = 5s) {
  auto until = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

// A node's view: whether it leads, and every change it was told of.
struct node {
  std::mutex mu;
  std::vector<bool> changes;
  std::unique_ptr<leadership> l;

  void start(const std::string& url) {
    l = leadership::start({.url = url, .check = 50ms}, [this](bool leading) {
      std::lock_guard lock(mu);
      changes.push_back(leading);
    });
  }
  std::vector<bool> seen() {
    std::lock_guard lock(mu);
    return changes;
  }
};

using LeadershipTest = testing::postgres_test;

TEST_F(LeadershipTest, OneNodeLeadsAndAnotherTakesOverWhenItStops) {
  node a, b;
  a.start(url());
  ASSERT_TRUE(eventually([&] { return a.l->leading(); }));
  b.start(url());
  std::this_thread::sleep_for(300ms);  // several of b's tries
  EXPECT_FALSE(b.l->leading()) << "two leaders";
  EXPECT_TRUE(a.l->leading());

  a.l.reset();  // the node stops: its connection, and the lock, go with it
  EXPECT_EQ(a.seen(), (std::vector<bool>{true, false}));
  EXPECT_TRUE(eventually([&] { return b.l->leading(); })) << "no one took over";
  EXPECT_EQ(b.seen(), (std::vector<bool>{true}));
}

TEST_F(LeadershipTest, ALeaderWhoseConnectionIsKilledStopsLeadingAndTheOtherTakesOver) {
  node a;
  a.start(url());
  ASSERT_TRUE(eventually([&] { return a.l->leading(); }));
  node b;
  b.start(url());
  auto admin = connect();
  ASSERT_TRUE(admin) << admin.error().message;
  // The leader's backend is the one holding the advisory lock.
  auto killed = admin->query_int64(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
      "WHERE locktype = 'advisory' AND granted AND database = "
      "(SELECT oid FROM pg_database WHERE datname = current_database())");
  ASSERT_TRUE(killed) << killed.error().message;
  ASSERT_EQ(*killed, 1);
  // The old leader is told at its next check; then one of them leads again (b, or a after
  // reconnecting), never both for long.
  ASSERT_TRUE(eventually([&] { return a.seen().size() >= 2; }));
  ASSERT_TRUE(eventually([&] { return a.l->leading() != b.l->leading(); }));
  auto a_seen = a.seen();
  ASSERT_GE(a_seen.size(), 2u);
  EXPECT_EQ(a_seen[0], true);
  EXPECT_EQ(a_seen[1], false) << "the old leader was told it stopped leading";
  std::this_thread::sleep_for(200ms);
  EXPECT_NE(a.l->leading(), b.l->leading());
}

TEST(Leadership, AnUnreachableDatabaseNeverLeadsAndStopsAtOnce) {
  std::atomic<int> changes = 0;
  auto l = leadership::start(
      {.url = "postgresql://ordo@/postgres?host=/nonexistent-ordo-socket-dir&port=1",
       .check = 50ms},
      [&](bool) { ++changes; });
  ASSERT_TRUE(l);
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(l->leading());
  auto started = std::chrono::steady_clock::now();
  l.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(changes, 0);
}

}  // namespace
}  // namespace ordo::postgres
