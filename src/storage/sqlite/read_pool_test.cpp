// read_pool against a real SQLite file: tasks run on the reader threads, each with its own
// read-only connection, and see what the writer committed; the pool starts paused, pause() waits
// for running tasks and holds queued ones until resume(); close and reopen switch the database.
// Error paths: tasks are refused while no database is open (with the failure given to
// close_connections), a full queue and a stopped pool refuse submissions, and opening a missing
// or non-ordo file fails.
#include "storage/sqlite/read_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <set>
#include <string>
#include <thread>

#include "storage/sqlite/migrations.hpp"

namespace ordo::sqlite {
namespace {

using namespace std::chrono_literals;

// What one task saw, or the failure it was refused with.
struct outcome {
  bool ran = false;
  std::thread::id thread;
  const connection* db = nullptr;
  std::uint64_t generation = 0;
  std::uint64_t epoch = 0;
  std::int64_t projects = -1;
  std::string write_error;
  failure refused;
};

class read_pool_test : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir() + "read_pool_test.db";
    remove_files();
    auto db = connection::open(path_, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    writer_.emplace(std::move(*db));
    ASSERT_TRUE(writer_->exec("PRAGMA journal_mode=WAL"));
    ASSERT_TRUE(migrate(*writer_));
    add_project("p1");
  }
  void TearDown() override {
    if (pool_) pool_->stop();
    pool_.reset();
    writer_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
      std::remove((path_ + suffix).c_str());
  }
  void add_project(const std::string& id) {
    ASSERT_TRUE(
        writer_->exec("INSERT INTO projects (id, name, created_at_ms, updated_at_ms) "
                      "VALUES ('" +
                      id + "', 'P', 1, 1)"));
  }
  database_options options() const {
    database_options o;
    o.path = path_;
    o.busy_timeout = 1000ms;
    return o;
  }
  void start_open(int threads, std::uint64_t generation = 1, std::uint64_t epoch = 9) {
    pool_ = read_pool::start(threads, 16);
    ASSERT_TRUE(pool_);
    auto s = pool_->open_connections(options(), generation, epoch);
    ASSERT_TRUE(s) << s.error().message;
    pool_->resume();
  }

  // Submits a task that records what it saw; the future answers when it ran or was refused.
  // `before` runs first on the reader thread (to hold it).
  std::future<outcome> submit(std::function<void()> before = {}) {
    auto done = std::make_shared<std::promise<outcome>>();
    auto f = done->get_future();
    bool queued = pool_->submit(
        [done, before](read_context& ctx) {
          if (before) before();
          outcome o;
          o.ran = true;
          o.thread = std::this_thread::get_id();
          o.db = &ctx.db;
          o.generation = ctx.generation;
          o.epoch = ctx.database_epoch;
          auto n = ctx.db.query_int64("SELECT COUNT(*) FROM projects");
          if (n) o.projects = n->value_or(-1);
          auto w = ctx.db.exec("DELETE FROM projects");
          if (!w) o.write_error = w.error().code;
          done->set_value(std::move(o));
        },
        [done](const failure& why) {
          outcome o;
          o.refused = why;
          done->set_value(std::move(o));
        });
    EXPECT_TRUE(queued);
    return f;
  }
  static outcome get(std::future<outcome>& f) {
    if (f.wait_for(5s) != std::future_status::ready) {
      ADD_FAILURE() << "the task was neither run nor refused";
      return {};
    }
    return f.get();
  }

  std::string path_;
  std::optional<connection> writer_;
  std::unique_ptr<read_pool> pool_;
};

// Holds each task until `n` of them are running at once (or a deadline passes).
struct rendezvous {
  explicit rendezvous(int n) : expected(n) {}
  void arrive() {
    ++arrived;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (arrived.load() < expected && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(1ms);
  }
  int expected;
  std::atomic<int> arrived{0};
};

TEST_F(read_pool_test, tasks_run_on_reader_threads_each_with_its_own_read_only_connection) {
  start_open(2, 3, 77);
  auto meet = std::make_shared<rendezvous>(2);
  auto a = submit([meet] { meet->arrive(); });
  auto b = submit([meet] { meet->arrive(); });
  outcome x = get(a);
  outcome y = get(b);
  ASSERT_TRUE(x.ran && y.ran);
  EXPECT_EQ(meet->arrived.load(), 2);
  EXPECT_NE(x.thread, std::this_thread::get_id());
  EXPECT_NE(x.thread, y.thread) << "two tasks at once run on two reader threads";
  EXPECT_NE(x.db, y.db) << "each reader thread has its own connection";
  for (const outcome& o : {x, y}) {
    EXPECT_EQ(o.generation, 3u);
    EXPECT_EQ(o.epoch, 77u);
    EXPECT_EQ(o.projects, 1);
    EXPECT_EQ(o.write_error, k_storage_readonly);
  }
  auto count = writer_->query_int64("SELECT COUNT(*) FROM projects");
  ASSERT_TRUE(count);
  EXPECT_EQ(count->value_or(0), 1) << "no task could delete";
}

TEST_F(read_pool_test, tasks_see_what_the_writer_committed_before_they_ran) {
  start_open(1);
  auto first = submit();
  EXPECT_EQ(get(first).projects, 1);
  add_project("p2");
  auto second = submit();
  EXPECT_EQ(get(second).projects, 2);
}

TEST_F(read_pool_test, a_new_pool_is_paused_until_resumed) {
  pool_ = read_pool::start(1, 16);
  auto f = submit();
  EXPECT_EQ(f.wait_for(50ms), std::future_status::timeout) << "paused: nothing runs";
  ASSERT_TRUE(pool_->open_connections(options(), 1, 1));
  pool_->resume();
  outcome o = get(f);
  EXPECT_TRUE(o.ran) << "opened before resume: the queued task runs, not refused";
}

TEST_F(read_pool_test, pause_waits_for_running_tasks_and_holds_queued_ones) {
  start_open(1);
  std::promise<void> started;
  auto release = std::make_shared<std::promise<void>>();
  std::shared_future<void> released = release->get_future().share();
  auto running = submit([&started, released] {
    started.set_value();
    released.wait();
  });
  started.get_future().wait();
  auto paused = std::async(std::launch::async, [&] { pool_->pause(); });
  EXPECT_EQ(paused.wait_for(50ms), std::future_status::timeout)
      << "pause() returns only when the running task is done";
  release->set_value();
  EXPECT_EQ(paused.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(get(running).ran);

  auto queued = submit();
  EXPECT_EQ(queued.wait_for(50ms), std::future_status::timeout) << "held while paused";
  pool_->resume();
  EXPECT_TRUE(get(queued).ran);
}

TEST_F(read_pool_test, reopening_switches_the_tasks_to_the_new_generation) {
  start_open(2, 1, 10);
  pool_->pause();
  pool_->close_connections(make_failure(failure_kind::unavailable, "switching", "switching"));
  ASSERT_TRUE(pool_->open_connections(options(), 2, 20));
  pool_->resume();
  auto f = submit();
  outcome o = get(f);
  ASSERT_TRUE(o.ran);
  EXPECT_EQ(o.generation, 2u);
  EXPECT_EQ(o.epoch, 20u);
}

TEST_F(read_pool_test, stop_answers_every_queued_task_before_the_threads_end) {
  start_open(1);
  pool_->pause();
  auto a = submit();
  auto b = submit();
  pool_->stop();
  EXPECT_TRUE(get(a).ran);
  EXPECT_TRUE(get(b).ran);
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(read_pool_test, without_a_database_tasks_are_refused_as_unavailable) {
  pool_ = read_pool::start(1, 16);
  pool_->resume();
  auto f = submit();
  outcome o = get(f);
  EXPECT_FALSE(o.ran);
  EXPECT_EQ(o.refused.kind, failure_kind::unavailable);
  EXPECT_EQ(o.refused.code, "storage_unavailable");
}

TEST_F(read_pool_test, after_close_connections_tasks_are_refused_with_the_failure_it_was_given) {
  start_open(2);
  pool_->pause();
  pool_->close_connections(
      make_failure(failure_kind::unavailable, "database_replaced", "the file was replaced"));
  pool_->resume();
  auto f = submit();
  outcome o = get(f);
  EXPECT_FALSE(o.ran);
  EXPECT_EQ(o.refused.code, "database_replaced");
  EXPECT_EQ(o.refused.message, "the file was replaced");
}

TEST_F(read_pool_test, a_full_queue_refuses_submissions_without_calling_either_function) {
  pool_ = read_pool::start(1, 2);  // paused: nothing leaves the queue
  int called = 0;
  EXPECT_TRUE(pool_->submit([](read_context&) {}, [](const failure&) {}));
  EXPECT_TRUE(pool_->submit([](read_context&) {}, [](const failure&) {}));
  EXPECT_FALSE(pool_->submit([&](read_context&) { ++called; }, [&](const failure&) { ++called; }));
  pool_->stop();  // the two queued tasks are refused (no database); the third never existed
  EXPECT_EQ(called, 0);
}

TEST_F(read_pool_test, a_stopped_pool_refuses_submissions_and_stops_once) {
  start_open(1);
  pool_->stop();
  int called = 0;
  EXPECT_FALSE(pool_->submit([&](read_context&) { ++called; }, [&](const failure&) { ++called; }));
  pool_->stop();  // a second stop (and the destructor's) is harmless
  EXPECT_EQ(called, 0);
}

TEST_F(read_pool_test, opening_a_missing_file_fails_and_tasks_stay_refused) {
  pool_ = read_pool::start(1, 16);
  database_options missing = options();
  missing.path = testing::TempDir() + "read_pool_test_missing.db";
  std::remove(missing.path.c_str());
  auto s = pool_->open_connections(missing, 1, 1);
  EXPECT_FALSE(s);
  EXPECT_FALSE(std::ifstream(missing.path).good()) << "a reader never creates the file";
  pool_->resume();
  auto f = submit();
  EXPECT_FALSE(get(f).ran);
}

TEST_F(read_pool_test, opening_a_file_without_the_ordo_schema_fails) {
  const std::string empty = testing::TempDir() + "read_pool_test_empty.db";
  std::remove(empty.c_str());
  {
    auto db = connection::open(empty, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("CREATE TABLE unrelated (x INTEGER)"));
  }
  pool_ = read_pool::start(1, 16);
  database_options o = options();
  o.path = empty;
  EXPECT_FALSE(pool_->open_connections(o, 1, 1)) << "the message reader cannot be prepared";
  pool_->resume();
  auto f = submit();
  EXPECT_FALSE(get(f).ran);
  pool_->stop();
  std::remove(empty.c_str());
}

}  // namespace
}  // namespace ordo::sqlite
