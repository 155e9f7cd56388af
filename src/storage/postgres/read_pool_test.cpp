#include "storage/postgres/read_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "storage/postgres/migrations.hpp"
#include "storage/postgres/scratch_cluster.hpp"

namespace ordo::postgres {
namespace {

using namespace std::chrono_literals;

// What one task ended with: the value it read, or the failure it met or was refused with.
struct outcome {
  std::optional<std::int64_t> value;
  std::optional<failure> error;
};

// Submits a task that runs `sql` (one integer) and waits for its outcome.
outcome read_one(read_pool& pool, std::string sql) {
  auto done = std::make_shared<std::promise<outcome>>();
  auto future = done->get_future();
  bool queued = pool.submit(
      [done, sql](read_context& ctx) {
        auto v = ctx.db.query_int64(sql);
        done->set_value(v ? outcome{v->value_or(0), std::nullopt}
                          : outcome{std::nullopt, std::move(v).error()});
      },
      [done](const failure& f) {
        done->set_value(outcome{std::nullopt, f});
      });
  EXPECT_TRUE(queued);
  if (!queued) return {};
  EXPECT_EQ(future.wait_for(10s), std::future_status::ready);
  return future.get();
}

using PostgresReadPoolTest = testing::postgres_test;

TEST_F(PostgresReadPoolTest, TasksReadOnTheirThreadsConnectionWhichIsReadOnly) {
  {
    auto db = connect();
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(migrate(*db));
    stream_row row;
    row.path = "s";
    row.content_type = "text/plain";
    row.incarnation = 1;
    ASSERT_TRUE(stream_tables(*db).insert_stream(row));
  }
  auto pool = read_pool::start({.url = url(), .threads = 2});
  auto n = read_one(*pool, "SELECT count(*) FROM streams");
  ASSERT_FALSE(n.error) << n.error->message;
  EXPECT_EQ(n.value, 1);
  auto write = read_one(*pool, "INSERT INTO meta VALUES ('x', 'y') RETURNING 1");
  ASSERT_TRUE(write.error);
  EXPECT_EQ(write.error->code, k_storage_readonly);
  // The stream tables come with the context.
  auto done = std::make_shared<std::promise<std::string>>();
  ASSERT_TRUE(pool->submit(
      [done](read_context& ctx) {
        auto found = ctx.streams.find_by_path("s");
        done->set_value(found && *found ? (*found)->content_type : "missing");
      },
      [done](const failure& f) { done->set_value(f.message); }));
  EXPECT_EQ(done->get_future().get(), "text/plain");
  EXPECT_GE(pool->connected(), 1);
}

TEST_F(PostgresReadPoolTest, TheQueueIsBoundedAndStoppingRefusesWhatIsQueued) {
  auto pool = read_pool::start({.url = url(), .threads = 1, .max_queued = 1});
  std::promise<void> release;
  auto released = release.get_future().share();
  std::promise<void> running;
  ASSERT_TRUE(pool->submit(
      [&, released](read_context&) {
        running.set_value();
        released.wait();
      },
      [](const failure&) {}));
  running.get_future().wait();
  std::atomic<bool> queued_ran = false;
  std::promise<failure> queued_refused;
  EXPECT_TRUE(pool->submit([&](read_context&) { queued_ran = true; },
                           [&](const failure& f) { queued_refused.set_value(f); }));
  EXPECT_FALSE(pool->submit([](read_context&) {}, [](const failure&) {})) << "past max_queued";
  // Stopping refuses what is queued and lets the running task finish.
  std::thread stopper([&] { pool->stop(); });
  auto refused = queued_refused.get_future();
  ASSERT_EQ(refused.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(refused.get().code, k_storage_unavailable);
  release.set_value();
  stopper.join();
  EXPECT_FALSE(queued_ran);
}

TEST_F(PostgresReadPoolTest, ALostConnectionFailsOneReadThenTheThreadReconnects) {
  auto pool = read_pool::start({.url = url(), .threads = 1});
  ASSERT_FALSE(read_one(*pool, "SELECT 1").error);
  auto admin = connect();
  ASSERT_TRUE(admin) << admin.error().message;
  auto killed = admin->query_int64(
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = 'ordo reader' AND datname = current_database()");
  ASSERT_TRUE(killed && *killed == 1);
  auto lost = read_one(*pool, "SELECT 1");
  ASSERT_TRUE(lost.error);
  EXPECT_EQ(lost.error->code, k_storage_unavailable);
  auto back = read_one(*pool, "SELECT 2");
  ASSERT_FALSE(back.error) << back.error->message;
  EXPECT_EQ(back.value, 2);
  EXPECT_EQ(pool->connected(), 1);
}

TEST(PostgresReadPool, AnUnreachableDatabaseRefusesTasksAtOnce) {
  auto pool = read_pool::start(
      {.url = "postgresql://ordo@/postgres?host=/nonexistent-ordo-socket-dir&port=1",
       .threads = 1});
  auto refused = read_one(*pool, "SELECT 1");
  ASSERT_TRUE(refused.error);
  EXPECT_EQ(refused.error->code, k_storage_unavailable);
  EXPECT_EQ(pool->connected(), 0);
  // Within the backoff, refused without another connection attempt.
  auto again = read_one(*pool, "SELECT 1");
  ASSERT_TRUE(again.error);
  EXPECT_EQ(again.error->code, k_storage_unavailable);
  pool->stop();
  EXPECT_FALSE(pool->submit([](read_context&) {}, [](const failure&) {})) << "stopped";
}

}  // namespace
}  // namespace ordo::postgres
