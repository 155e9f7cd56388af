// Black-box tests of the stream engine against a real SQLite file: offsets, group commit,
// savepoint isolation, idempotent producers, closure, forks, deletion, expiry and restart.
#include "streams/stream_engine.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

namespace ordo {
namespace {

// Every stored message: moved into the stream table, or still in the append log.
const std::string k_all_messages =
    "(SELECT stream_id, seq, data FROM messages UNION ALL "
    "SELECT stream_id, seq, data FROM recent_messages)";

namespace fs = std::filesystem;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Once armed, holds the next thread that calls hold() until released: the writer at the start
// of its next batch (so that jobs submitted meanwhile queue up and are committed together), or
// the syncer in its next flush.
class one_shot_gate {
 public:
  status hold() {
    if (!armed_.exchange(false)) return ok_v;
    entered_.set_value();
    released_.wait();
    return ok_v;
  }
  void arm() { armed_ = true; }
  void wait_until_held() { entered_future_.wait(); }
  void release() { release_.set_value(); }

 private:
  std::atomic<bool> armed_{false};
  std::promise<void> entered_;
  std::shared_future<void> entered_future_ = entered_.get_future().share();
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

class stream_engine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::critical);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("ordo-engine-test-" + std::to_string(rd()));
    fs::create_directories(dir_);
    open();
  }
  void TearDown() override {
    engine_.reset();
    fs::remove_all(dir_);
  }

  void open(std::function<void(stream_engine_options&)> adjust = nullptr) {
    engine_.reset();
    stream_engine_options o;
    o.database.path = (dir_ / "ordo.db").string();
    if (adjust) adjust(o);
    o.maintenance_interval = std::chrono::milliseconds(50);
    o.fault_injector = [this](std::string_view point, std::string_view path) -> status {
      if (point == "flush") {
        // On the syncer thread, at any time (maintenance commits too): its own hook.
        std::function<status()> hook;
        {
          std::lock_guard lock(flush_mu_);
          hook = flush_fault_;
        }
        return hook ? hook() : ok_v;
      }
      if (point == "batch.begin") (void)gate_.hold();
      if (fault_) return fault_(point, path);
      return ok_v;
    };
    auto e = stream_engine::open(o);
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(*e);
  }

  create_result create(create_request r) {
    if (r.now_ms == 0) r.now_ms = wall_ms();
    std::promise<create_result> p;
    engine_->create(std::move(r), [&](create_result x) { p.set_value(std::move(x)); });
    return p.get_future().get();
  }

  create_result create(const std::string& path, const std::string& content_type = "text/plain") {
    create_request r;
    r.path = path;
    r.content_type = content_type;
    return create(std::move(r));
  }

  std::future<append_result> append_async(append_request r) {
    if (r.now_ms == 0) r.now_ms = wall_ms();
    auto p = std::make_shared<std::promise<append_result>>();
    auto f = p->get_future();
    engine_->append(std::move(r), [p](append_result x) { p->set_value(std::move(x)); });
    return f;
  }

  append_request data_request(const std::string& path, const std::string& data,
                              const std::string& media_type = "text/plain") {
    append_request r;
    r.path = path;
    r.media_type = media_type;
    r.data = data;
    return r;
  }

  append_result append(const std::string& path, const std::string& data) {
    return append_async(data_request(path, data)).get();
  }

  append_result append_as(const std::string& path, const std::string& data,
                          const std::string& producer, std::uint64_t epoch, std::uint64_t seq) {
    auto r = data_request(path, data);
    r.producer = producer_claim{producer, epoch, seq};
    return append_async(std::move(r)).get();
  }

  append_result close(const std::string& path) {
    append_request r;
    r.path = path;
    r.close = true;
    return append_async(std::move(r)).get();
  }

  delete_result remove(const std::string& path) {
    std::promise<delete_result> p;
    engine_->remove(path, [&](delete_result x) { p.set_value(std::move(x)); });
    return p.get_future().get();
  }

  // Everything readable at `path`, through the engine's read path (cache or reader pool).
  std::string read_all(const std::string& path) { return read_from(path, 0); }

  // The messages after `position`, following chunks to the tail.
  std::string read_from(const std::string& path, std::uint64_t position) {
    auto record = engine_->find(path);
    if (!record) return "<missing>";
    std::string out;
    while (position < record->state().tail) {
      std::promise<read_result> p;
      engine_->read(record, position, [&](read_result r) { p.set_value(std::move(r)); });
      read_result r = p.get_future().get();
      if (!r.chunk) return "<error: " + r.error.message + ">";
      out += encode_body(record->config().payload, r.chunk->messages);
      if (r.chunk->messages.empty()) break;
      position = r.chunk->upto();
    }
    return out;
  }

  // Counts rows in the database file directly, bypassing the engine.
  std::int64_t count_rows(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_ / "ordo.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    std::int64_t n = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  }

  template <class Predicate>
  bool eventually(Predicate p) {
    for (int i = 0; i < 200; ++i) {
      if (p()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return p();
  }

  void set_flush_fault(std::function<status()> hook) {
    std::lock_guard lock(flush_mu_);
    flush_fault_ = std::move(hook);
  }

  fs::path dir_;
  one_shot_gate gate_;
  std::mutex flush_mu_;
  std::function<status()> flush_fault_;  // flush_mu_
  std::function<status(std::string_view, std::string_view)> fault_;
  std::unique_ptr<stream_engine> engine_;
};

// ---- offsets and the write path --------------------------------------------------------------

TEST_F(stream_engine_test, offsets_are_assigned_densely_in_commit_order) {
  ASSERT_EQ(create("s").status, create_status::created);
  for (std::uint64_t i = 1; i <= 5; ++i) {
    append_result r = append("s", "m" + std::to_string(i));
    ASSERT_EQ(r.status, append_status::appended);
    EXPECT_EQ(r.tail, i);
  }
  EXPECT_EQ(read_all("s"), "m1m2m3m4m5");
}

TEST_F(stream_engine_test, client_streams_lists_created_streams_by_path_without_managed_ones) {
  ASSERT_EQ(create("b/2").status, create_status::created);
  ASSERT_EQ(create("a").status, create_status::created);
  ASSERT_EQ(create("__ordo/managed").status, create_status::created);
  auto listed = engine_->client_streams();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed[0]->config().path, "a");
  EXPECT_EQ(listed[1]->config().path, "b/2");
  EXPECT_EQ(engine_->stream_count(), listed.size());
}

TEST_F(stream_engine_test, managed_stream_prefix_option_decides_which_streams_are_clients) {
  open([](stream_engine_options& o) { o.managed_stream_prefix = "_sys/"; });
  ASSERT_EQ(create("_sys/feed").status, create_status::created);
  ASSERT_EQ(create("__ordo/x").status, create_status::created);  // a client's under this prefix
  auto listed = engine_->client_streams();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]->config().path, "__ordo/x");
  EXPECT_EQ(engine_->stream_count(), 1u);
}

TEST_F(stream_engine_test, everything_queued_is_committed_in_one_transaction) {
  ASSERT_EQ(create("s").status, create_status::created);
  std::uint64_t before = engine_->stats().transactions_committed;
  gate_.arm();
  auto blocker = append_async(data_request("s", "first"));
  gate_.wait_until_held();
  std::vector<std::future<append_result>> queued;
  for (int i = 0; i < 50; ++i)
    queued.push_back(append_async(data_request("s", "x")));
  gate_.release();
  EXPECT_EQ(blocker.get().tail, 1u);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(queued[i].get().tail, 2u + i);
  // The blocked batch, then one transaction for all fifty queued appends.
  EXPECT_EQ(engine_->stats().transactions_committed - before, 2u);
}

TEST_F(stream_engine_test, a_failing_job_fails_alone_and_its_writes_are_rolled_back) {
  ASSERT_EQ(create("a").status, create_status::created);
  ASSERT_EQ(create("b").status, create_status::created);
  fault_ = [](std::string_view point, std::string_view path) -> status {
    if (point == "append.after_insert" && path == "b") {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  gate_.arm();
  auto blocker = append_async(data_request("a", "0"));
  gate_.wait_until_held();
  auto first = append_async(data_request("a", "A"));
  auto failing_request = data_request("b", "B");
  failing_request.producer = producer_claim{"p", 0, 0};
  auto failing = append_async(std::move(failing_request));
  auto last = append_async(data_request("a", "C"));
  gate_.release();
  blocker.get();
  EXPECT_EQ(first.get().status, append_status::appended);
  append_result f = failing.get();
  EXPECT_EQ(f.status, append_status::failed);
  EXPECT_EQ(f.error.kind, failure_kind::insufficient_storage);
  append_result l = last.get();
  EXPECT_EQ(l.status, append_status::appended);
  EXPECT_EQ(l.tail, 3u);  // dense: the failed job took no position
  EXPECT_EQ(read_all("a"), "0AC");
  EXPECT_EQ(engine_->find("b")->state().tail, 0u);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM " + k_all_messages +
                       " m JOIN streams s ON s.id = m.stream_id "
                       "WHERE s.path = 'b'"),
            0);
  // The failed job's producer state was rolled back with its data: the retry is new, not a dup.
  fault_ = nullptr;
  EXPECT_EQ(append_as("b", "B", "p", 0, 0).status, append_status::appended);
  EXPECT_EQ(read_all("b"), "B");
}

TEST_F(stream_engine_test, writers_are_acknowledged_only_after_commit) {
  ASSERT_EQ(create("s").status, create_status::created);
  fault_ = [](std::string_view point, std::string_view) -> status {
    if (point == "commit") {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  append_result r = append("s", "lost");
  EXPECT_EQ(r.status, append_status::failed);
  EXPECT_EQ(engine_->find("s")->state().tail, 0u);  // nothing published
  fault_ = nullptr;
  EXPECT_EQ(append("s", "kept").tail, 1u);
  EXPECT_EQ(read_all("s"), "kept");
}

TEST_F(stream_engine_test, a_commit_of_unknown_outcome_refuses_all_later_writes) {
  ASSERT_EQ(create("s").status, create_status::created);
  fault_ = [](std::string_view point, std::string_view) -> status {
    if (point == "commit") {
      return make_failure(failure_kind::unavailable, "storage_io_error", "injected fsync error");
    }
    return ok_v;
  };
  EXPECT_EQ(append("s", "x").status, append_status::failed);
  fault_ = nullptr;
  EXPECT_FALSE(engine_->writable());
  append_result later = append("s", "y");
  EXPECT_EQ(later.status, append_status::failed);
  EXPECT_EQ(later.error.kind, failure_kind::unavailable);
  EXPECT_EQ(later.error.code, "storage_poisoned");
  // Reads keep working.
  EXPECT_EQ(read_all("s"), "");
}

// ---- the tail caches' global budget ---------------------------------------------------------

TEST_F(stream_engine_test, past_the_total_cache_budget_the_least_recently_used_caches_are_emptied) {
  open([](stream_engine_options& o) { o.tail_cache_total_bytes = 100; });
  ASSERT_EQ(create("old").status, create_status::created);
  ASSERT_EQ(create("new").status, create_status::created);
  const std::string sixty(60, 'x');
  append("old", sixty);
  append("new", sixty);
  auto old = engine_->find("old");
  auto recent = engine_->find("new");
  // 120 bytes cached against a budget of 100: the next maintenance pass empties the cache of
  // the stream appended to least recently, and only that one.
  ASSERT_TRUE(eventually([&] { return old->cache_bytes() == 0; }));
  EXPECT_FALSE(old->read_cached(0, 1, 1 << 20));
  EXPECT_EQ(recent->cache_bytes(), 60u);
  EXPECT_TRUE(recent->read_cached(0, 1, 1 << 20));
  EXPECT_EQ(read_all("old"), sixty);  // from the database
  append("old", "y");                 // the cache fills again from the next commit
  EXPECT_TRUE(old->read_cached(1, 2, 1 << 20));
}

// ---- the append log --------------------------------------------------------------------------

TEST_F(stream_engine_test, messages_read_the_same_from_the_append_log_the_stream_table_or_both) {
  open([](stream_engine_options& o) {
    o.tail_cache_bytes = 0;  // every read goes to SQLite
    o.log_merge_rows = 4;
  });
  ASSERT_EQ(create("a").status, create_status::created);
  ASSERT_EQ(create("b").status, create_status::created);
  std::string a, b;
  for (int i = 1; i <= 11; ++i) {
    a += "a" + std::to_string(i);
    b += "b" + std::to_string(i);
    ASSERT_EQ(append("a", "a" + std::to_string(i)).tail, static_cast<std::uint64_t>(i));
    ASSERT_EQ(append("b", "b" + std::to_string(i)).tail, static_cast<std::uint64_t>(i));
  }
  // Moved after every batch that left 4 or more in the log: 20 moved, 2 still logged.
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 20);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 2);
  EXPECT_EQ(read_all("a"), a);  // one chunk from both tables
  EXPECT_EQ(read_all("b"), b);
  EXPECT_EQ(read_from("a", 10), "a11");  // the log only
  EXPECT_EQ(read_from("a", 3), a.substr(6));
  // A stop moves what is left: a stopped file has everything in the stream table.
  engine_.reset();
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 0);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 22);
}

TEST_F(stream_engine_test, a_failed_move_of_the_append_log_keeps_it_and_is_tried_again_later) {
  open([](stream_engine_options& o) {
    o.tail_cache_bytes = 0;  // every read goes to SQLite
    o.log_merge_rows = 2;
  });
  std::atomic<bool> failing{true};
  fault_ = [&](std::string_view point, std::string_view) -> status {
    if (point == "merge" && failing) {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  append("s", "b");  // the move fails: rolled back, the log kept whole
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 2);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 0);
  EXPECT_TRUE(engine_->writable());      // not an unknown outcome: writes go on
  EXPECT_EQ(append("s", "c").tail, 3u);  // the tail still counts what the log holds
  EXPECT_EQ(read_all("s"), "abc");
  failing = false;
  // Not at every batch after a failure: once the log has grown by log_merge_rows more.
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 3);
  append("s", "d");
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 0);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 4);
  EXPECT_EQ(read_all("s"), "abcd");
}

TEST_F(stream_engine_test, the_append_log_is_also_moved_once_it_holds_log_merge_bytes) {
  open([](stream_engine_options& o) { o.log_merge_bytes = 10; });
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "123456");
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 1);  // 6 bytes
  append("s", "123456");
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 0);  // 12: moved
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 2);
  EXPECT_EQ(read_all("s"), "123456123456");
}

TEST_F(stream_engine_test, what_a_delete_takes_from_the_append_log_no_longer_counts_to_its_limit) {
  open([](stream_engine_options& o) { o.log_merge_bytes = 10; });
  ASSERT_EQ(create("gone").status, create_status::created);
  ASSERT_EQ(create("kept").status, create_status::created);
  append("gone", "123456");
  ASSERT_EQ(remove("gone").status, delete_status::deleted);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 0);
  append("kept", "123456");  // 6 bytes logged, not 12: no move yet
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 1);
  append("kept", "123456");  // 12: moved
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 0);
  EXPECT_EQ(read_all("kept"), "123456123456");
}

TEST_F(stream_engine_test, a_large_message_skips_the_append_log_unless_its_stream_is_in_it) {
  open([](stream_engine_options& o) { o.tail_cache_bytes = 0; });
  ASSERT_EQ(create("s").status, create_status::created);
  const std::string large(sqlite::stream_tables::k_direct_message_bytes, 'L');
  append("s", large);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 1);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 0);
  append("s", "small");
  append("s", large);  // behind the logged one: into the log too, to keep the order
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 1);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 2);
  EXPECT_EQ(read_all("s"), large + "small" + large);
  engine_.reset();  // the stop moves the log
  open([](stream_engine_options& o) { o.tail_cache_bytes = 0; });
  append("s", large);  // the log holds nothing of the stream again
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 4);
  EXPECT_EQ(read_all("s"), large + "small" + large + large);
}

TEST_F(stream_engine_test, a_start_after_a_crash_finds_tails_and_messages_in_the_append_log) {
  open([](stream_engine_options& o) { o.tail_cache_bytes = 0; });
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  append("s", "b");
  append("s", "c");
  ASSERT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 3);
  // The file as a crash would leave it: everything still in the log (a stop would move it).
  fs::path crashed = dir_ / "crashed";
  fs::create_directories(crashed);
  {
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_ / "ordo.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    std::string sql = "VACUUM INTO '" + (crashed / "ordo.db").string() + "'";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  engine_.reset();
  fs::remove(dir_ / "ordo.db");
  fs::rename(crashed / "ordo.db", dir_ / "ordo.db");
  open([](stream_engine_options& o) { o.tail_cache_bytes = 0; });
  ASSERT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 3);
  EXPECT_EQ(engine_->find("s")->state().tail, 3u);
  EXPECT_EQ(read_all("s"), "abc");
  EXPECT_EQ(append("s", "d").tail, 4u);  // the next position, not one the log already holds
  EXPECT_EQ(read_all("s"), "abcd");
}

TEST_F(stream_engine_test, a_deleted_stream_leaves_nothing_in_the_append_log) {
  ASSERT_EQ(create("gone").status, create_status::created);
  ASSERT_EQ(create("kept").status, create_status::created);
  append("gone", "x");
  append("kept", "y");
  append("gone", "z");
  ASSERT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 3);
  ASSERT_EQ(remove("gone").status, delete_status::deleted);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM recent_messages"), 1);
  engine_.reset();  // the stop moves the rest
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM messages"), 1);
}

// ---- the pipelined flush (wal_syncer) --------------------------------------------------------

TEST_F(stream_engine_test, an_append_is_acknowledged_and_published_only_after_its_flush) {
  ASSERT_EQ(create("s").status, create_status::created);
  one_shot_gate flush;
  set_flush_fault([&] { return flush.hold(); });
  flush.arm();
  auto first = append_async(data_request("s", "a"));
  flush.wait_until_held();
  // The next transaction runs and commits while the disk flushes the first: both are in the
  // file, neither is acknowledged or visible to readers.
  auto second = append_async(data_request("s", "b"));
  EXPECT_TRUE(
      eventually([&] { return count_rows("SELECT count(*) FROM " + k_all_messages) == 2; }));
  EXPECT_EQ(first.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(engine_->find("s")->state().tail, 0u);
  flush.release();
  EXPECT_EQ(first.get().tail, 1u);
  EXPECT_EQ(second.get().tail, 2u);
  EXPECT_EQ(read_all("s"), "ab");
}

TEST_F(stream_engine_test, a_batch_is_answered_once_flushed_without_waiting_for_the_next_commit) {
  ASSERT_EQ(create("s").status, create_status::created);
  ASSERT_EQ(create("s2").status, create_status::created);
  one_shot_gate flush, insert, commit;
  set_flush_fault([&] { return flush.hold(); });
  fault_ = [&](std::string_view point, std::string_view path) -> status {
    if (point == "append.after_insert" && path == "s2") return insert.hold();
    if (point == "commit") return commit.hold();
    return ok_v;
  };
  // Batch 1 = {a}, held at its start while b and c queue up behind it as batch 2.
  flush.arm();
  gate_.arm();
  auto first = append_async(data_request("s", "a"));
  gate_.wait_until_held();
  insert.arm();
  auto second = append_async(data_request("s2", "b"));
  auto third = append_async(data_request("s", "c"));
  gate_.release();
  flush.wait_until_held();   // batch 1 committed, its flush held
  insert.wait_until_held();  // batch 2 runs: held inside b
  commit.arm();
  flush.release();
  EXPECT_TRUE(engine_->await_durable());  // batch 1's flush is done; batch 2 has not committed
  insert.release();
  commit.wait_until_held();  // batch 2 about to commit
  // Batch 1 was answered before c ran, once its flush was done.
  EXPECT_EQ(first.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(second.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  commit.release();
  EXPECT_EQ(first.get().tail, 1u);
  EXPECT_EQ(second.get().tail, 1u);
  EXPECT_EQ(third.get().tail, 2u);
}

TEST_F(stream_engine_test, a_read_answers_only_once_what_it_saw_is_on_disk) {
  ASSERT_EQ(create("s").status, create_status::created);
  one_shot_gate flush;
  set_flush_fault([&] { return flush.hold(); });
  flush.arm();
  auto appended = append_async(data_request("s", "a"));
  flush.wait_until_held();
  std::promise<std::int64_t> seen;
  ASSERT_TRUE(engine_->read_with(
      [&](sqlite::read_context& ctx) {
        // No ASSERT on the reader thread: it would return without answering and hang the test.
        auto n = ctx.db.query_int64("SELECT count(*) FROM " + k_all_messages);
        EXPECT_TRUE(n);
        EXPECT_TRUE(engine_->await_durable());
        seen.set_value(n ? n->value_or(-1) : -2);
      },
      [](const failure&) {}));
  auto answer = seen.get_future();
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  flush.release();
  EXPECT_EQ(answer.get(), 1);
  EXPECT_EQ(appended.get().status, append_status::appended);
}

TEST_F(stream_engine_test, a_failed_flush_fails_its_writers_and_refuses_all_later_writes) {
  ASSERT_EQ(create("s").status, create_status::created);
  set_flush_fault([] {
    return make_failure(failure_kind::unavailable, "storage_io_error", "injected fdatasync error");
  });
  append_result r = append("s", "x");
  EXPECT_EQ(r.status, append_status::failed);
  EXPECT_EQ(r.error.code, "storage_io_error");
  EXPECT_EQ(engine_->find("s")->state().tail, 0u);  // never shown to readers
  EXPECT_FALSE(engine_->writable());
  EXPECT_FALSE(engine_->await_durable());
  set_flush_fault(nullptr);
  append_result later = append("s", "y");
  EXPECT_EQ(later.status, append_status::failed);
  EXPECT_EQ(later.error.code, "storage_poisoned");
}

TEST_F(stream_engine_test, a_failed_flush_of_a_maintenance_commit_publishes_nothing_and_poisons) {
  // A stream that exists, so the append below is refused for the poison alone.
  ASSERT_EQ(create("s").status, create_status::created);
  create_request c;
  c.path = "short";
  c.content_type = "text/plain";
  c.ttl_seconds = 0;  // expires as soon as it is idle
  ASSERT_EQ(create(c).status, create_status::created);
  set_flush_fault([] {
    return make_failure(failure_kind::unavailable, "storage_io_error", "injected fdatasync error");
  });
  engine_->expire_soon(engine_->find("short"));
  EXPECT_TRUE(eventually([&] { return !engine_->writable(); }));
  // The expiry's removal was never shown: the stream is still there to readers.
  ASSERT_NE(engine_->find("short"), nullptr);
  EXPECT_EQ(engine_->find("short")->state().lifecycle, stream_lifecycle::live);
  set_flush_fault(nullptr);
  EXPECT_EQ(append("s", "x").error.code, "storage_poisoned");
}

TEST_F(stream_engine_test, with_sync_normal_nothing_is_flushed_by_ordo) {
  open([](stream_engine_options& o) { o.database.sync = sqlite::sync_mode::normal; });
  std::atomic<int> flushes{0};
  set_flush_fault([&]() -> status {
    ++flushes;
    return ok_v;
  });
  ASSERT_EQ(create("s").status, create_status::created);
  EXPECT_EQ(append("s", "x").tail, 1u);
  EXPECT_EQ(flushes, 0);
}

// ---- idempotent producers --------------------------------------------------------------------

TEST_F(stream_engine_test, producer_sequences_are_validated_as_the_protocol_prescribes) {
  ASSERT_EQ(create("s").status, create_status::created);
  append_result r = append_as("s", "a", "p", 0, 0);
  EXPECT_EQ(r.status, append_status::appended);
  EXPECT_EQ(r.producer_epoch, 0u);
  EXPECT_EQ(r.producer_seq, 0u);
  EXPECT_EQ(append_as("s", "b", "p", 0, 1).status, append_status::appended);
  EXPECT_EQ(append_as("s", "c", "p", 0, 2).status, append_status::appended);

  r = append_as("s", "b", "p", 0, 1);  // an old retry
  EXPECT_EQ(r.status, append_status::duplicate);
  EXPECT_EQ(r.producer_seq, 2u);  // the highest accepted, not the request's

  r = append_as("s", "e", "p", 0, 4);
  EXPECT_EQ(r.status, append_status::producer_seq_gap);
  EXPECT_EQ(r.expected_seq, 3u);
  EXPECT_EQ(r.received_seq, 4u);

  r = append_as("s", "z", "p", 1, 3);
  EXPECT_EQ(r.status, append_status::invalid_epoch_seq);

  EXPECT_EQ(append_as("s", "d", "p", 1, 0).status, append_status::appended);
  r = append_as("s", "zombie", "p", 0, 3);
  EXPECT_EQ(r.status, append_status::stale_epoch);
  EXPECT_EQ(r.producer_epoch, 1u);

  r = append_as("s", "x", "fresh", 0, 5);
  EXPECT_EQ(r.status, append_status::producer_seq_gap);
  EXPECT_EQ(r.expected_seq, 0u);

  EXPECT_EQ(read_all("s"), "abcd");
}

TEST_F(stream_engine_test, producer_state_survives_a_restart) {
  ASSERT_EQ(create("s").status, create_status::created);
  EXPECT_EQ(append_as("s", "a", "p", 3, 0).status, append_status::appended);
  EXPECT_EQ(append_as("s", "b", "p", 3, 1).status, append_status::appended);
  open();
  EXPECT_EQ(append_as("s", "b", "p", 3, 1).status, append_status::duplicate);
  EXPECT_EQ(append_as("s", "x", "p", 2, 0).status, append_status::stale_epoch);
  EXPECT_EQ(read_all("s"), "ab");
}

TEST_F(stream_engine_test, stream_seq_must_increase_bytewise) {
  ASSERT_EQ(create("s").status, create_status::created);
  auto r = data_request("s", "1");
  r.stream_seq = "2";
  EXPECT_EQ(append_async(r).get().status, append_status::appended);
  r.stream_seq = "10";  // "10" < "2" byte-wise
  EXPECT_EQ(append_async(r).get().status, append_status::stream_seq_conflict);
  r.stream_seq = "3";
  EXPECT_EQ(append_async(r).get().status, append_status::appended);
}

// ---- closure ---------------------------------------------------------------------------------

TEST_F(stream_engine_test, a_closed_stream_refuses_appends_and_closing_again_is_idempotent) {
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  auto final_append = data_request("s", "z");
  final_append.close = true;
  final_append.producer = producer_claim{"p", 0, 0};
  append_result r = append_async(final_append).get();
  EXPECT_EQ(r.status, append_status::appended);
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(r.tail, 2u);

  r = append("s", "late");
  EXPECT_EQ(r.status, append_status::stream_closed);
  EXPECT_EQ(r.tail, 2u);
  EXPECT_EQ(close("s").status, append_status::closed);
  EXPECT_EQ(append_async(final_append).get().status, append_status::duplicate);
  EXPECT_TRUE(engine_->find("s")->state().closed);
  open();
  EXPECT_TRUE(engine_->find("s")->state().closed);
  EXPECT_EQ(read_all("s"), "az");
}

// ---- create ----------------------------------------------------------------------------------

TEST_F(stream_engine_test, create_is_idempotent_and_conflicts_on_a_different_configuration) {
  ASSERT_EQ(create("s", "text/plain").status, create_status::created);
  EXPECT_EQ(create("s", "TEXT/PLAIN").status, create_status::exists);
  EXPECT_EQ(create("s", "application/json").status, create_status::config_conflict);
  create_request ttl;
  ttl.path = "s";
  ttl.content_type = "text/plain";
  ttl.ttl_seconds = 60;
  EXPECT_EQ(create(ttl).status, create_status::config_conflict);
}

TEST_F(stream_engine_test, json_rows_read_back_as_one_array) {
  create_request c;
  c.path = "j";
  c.content_type = "application/json";
  c.initial_data = R"({"a":1},{"b":2})";
  ASSERT_EQ(create(c).status, create_status::created);
  append_async(data_request("j", "[3]", "application/json")).get();
  EXPECT_EQ(read_all("j"), R"([{"a":1},{"b":2},[3]])");
}

// What the HTTP layer serves without the catch-up admission: the tail and the tail cache only.
TEST_F(stream_engine_test, read_in_memory_serves_the_tail_cache_and_leaves_the_rest_to_readers) {
  ASSERT_EQ(create("m").status, create_status::created);
  ASSERT_EQ(append("m", "a").status, append_status::appended);
  ASSERT_EQ(append("m", "b").status, append_status::appended);
  auto record = engine_->find("m");
  ASSERT_TRUE(record);
  auto at_tail = engine_->read_in_memory(*record, 2);
  ASSERT_TRUE(at_tail);
  EXPECT_TRUE(at_tail->messages.empty());
  auto cached = engine_->read_in_memory(*record, 1);
  ASSERT_TRUE(cached);
  ASSERT_EQ(cached->messages.size(), 1u);
  EXPECT_EQ(*cached->messages[0], "b");

  // After a restart the cache is empty: only the reader pool can serve old offsets.
  open();
  record = engine_->find("m");
  ASSERT_TRUE(record);
  EXPECT_FALSE(engine_->read_in_memory(*record, 0));
  EXPECT_EQ(read_all("m"), "ab");
}

// ---- forks, deletion, expiry -----------------------------------------------------------------

TEST_F(stream_engine_test, a_fork_reads_through_its_source_and_diverges) {
  ASSERT_EQ(create("src").status, create_status::created);
  append("src", "A");
  append("src", "B");
  create_request f;
  f.path = "fork";
  f.fork_source_path = "src";
  f.fork_offset = stream_offset{engine_->find("src")->config().offset_prefix, 1};
  ASSERT_EQ(create(f).status, create_status::created);
  append("fork", "X");
  append("src", "C");
  EXPECT_EQ(read_all("fork"), "AX");
  EXPECT_EQ(read_all("src"), "ABC");
  EXPECT_EQ(engine_->find("fork")->config().offset_prefix,
            engine_->find("src")->config().offset_prefix);
}

TEST_F(stream_engine_test, a_binary_sub_offset_fork_materializes_the_prefix) {
  ASSERT_EQ(create("src").status, create_status::created);
  append("src", "hello");
  create_request f;
  f.path = "fork";
  f.fork_source_path = "src";
  f.fork_offset = stream_offset{};
  f.fork_sub_offset = 3;
  ASSERT_EQ(create(f).status, create_status::created);
  EXPECT_EQ(read_all("fork"), "hel");
  f.path = "too-far";
  f.fork_sub_offset = 6;
  EXPECT_EQ(create(f).status, create_status::invalid);
}

TEST_F(stream_engine_test, deleting_a_source_with_forks_soft_deletes_it_until_the_last_fork_goes) {
  ASSERT_EQ(create("src").status, create_status::created);
  append("src", "data");
  create_request f;
  f.path = "fork";
  f.fork_source_path = "src";
  ASSERT_EQ(create(f).status, create_status::created);

  EXPECT_EQ(remove("src").status, delete_status::deleted);
  EXPECT_EQ(engine_->find("src")->state().lifecycle, stream_lifecycle::soft_deleted);
  EXPECT_EQ(remove("src").status, delete_status::gone);
  EXPECT_EQ(create("src").status, create_status::soft_deleted);
  EXPECT_EQ(read_all("fork"), "data");

  EXPECT_EQ(remove("fork").status, delete_status::deleted);
  EXPECT_EQ(engine_->find("src"), nullptr);
  EXPECT_EQ(engine_->find("fork"), nullptr);
  // The janitor removes the data of both in the background.
  EXPECT_TRUE(
      eventually([&] { return count_rows("SELECT COUNT(*) FROM " + k_all_messages) == 0; }));
  EXPECT_TRUE(eventually([&] { return count_rows("SELECT COUNT(*) FROM streams") == 0; }));
  EXPECT_EQ(create("src").status, create_status::created);
}

TEST_F(stream_engine_test, an_expired_stream_is_removed_and_its_path_reused) {
  create_request c;
  c.path = "short";
  c.content_type = "text/plain";
  c.ttl_seconds = 0;  // expires as soon as it is idle
  ASSERT_EQ(create(c).status, create_status::created);
  append("short", "gone soon");
  EXPECT_TRUE(engine_->find("short")->expired_at(wall_ms()));
  engine_->expire_soon(engine_->find("short"));
  EXPECT_TRUE(eventually([&] { return engine_->find("short") == nullptr; }));
  EXPECT_TRUE(
      eventually([&] { return count_rows("SELECT COUNT(*) FROM " + k_all_messages) == 0; }));
  EXPECT_EQ(create("short").status, create_status::created);
  EXPECT_EQ(read_all("short"), "");
}

TEST_F(stream_engine_test, a_sliding_ttl_is_extended_by_access_and_an_absolute_expiry_is_not) {
  std::int64_t t0 = wall_ms();
  create_request c;
  c.path = "ttl";
  c.ttl_seconds = 10;
  c.now_ms = t0;
  ASSERT_EQ(create(c).status, create_status::created);
  auto ttl = engine_->find("ttl");
  EXPECT_FALSE(ttl->expired_at(t0 + 9'999));
  EXPECT_TRUE(ttl->expired_at(t0 + 10'000));
  ttl->touch(t0 + 5'000);
  EXPECT_FALSE(ttl->expired_at(t0 + 14'999));
  EXPECT_TRUE(ttl->expired_at(t0 + 15'000));

  create_request a;
  a.path = "abs";
  a.expires_at_ms = t0 + 10'000;
  a.now_ms = t0;
  ASSERT_EQ(create(a).status, create_status::created);
  auto abs = engine_->find("abs");
  abs->touch(t0 + 9'000);
  EXPECT_TRUE(abs->expired_at(t0 + 10'000));
}

TEST_F(stream_engine_test, data_offsets_and_the_database_epoch_survive_a_restart) {
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  append("s", "b");
  std::uint64_t prefix = engine_->find("s")->config().offset_prefix;
  std::uint64_t epoch = engine_->database_epoch();
  open();
  EXPECT_EQ(engine_->database_epoch(), epoch);
  EXPECT_EQ(engine_->find("s")->config().offset_prefix, prefix);
  EXPECT_EQ(engine_->find("s")->state().tail, 2u);
  EXPECT_EQ(append("s", "c").tail, 3u);
  EXPECT_EQ(read_all("s"), "abc");
}

TEST_F(stream_engine_test, a_recreated_stream_gets_a_new_offset_prefix) {
  ASSERT_EQ(create("s").status, create_status::created);
  std::uint64_t first = engine_->find("s")->config().offset_prefix;
  ASSERT_EQ(remove("s").status, delete_status::deleted);
  ASSERT_EQ(create("s").status, create_status::created);
  EXPECT_NE(engine_->find("s")->config().offset_prefix, first);
}

// ---- the database file replaced under the engine -----------------------------------------

TEST_F(stream_engine_test,
       a_valid_replacement_is_adopted_with_a_new_epoch_and_old_records_retired) {
  open([](stream_engine_options& o) { o.tail_cache_bytes = 0; });  // every read goes to SQLite
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  append("s", "b");
  create_request f;
  f.path = "fork";
  f.fork_source_path = "s";
  f.fork_offset = stream_offset{engine_->find("s")->config().offset_prefix, 1};
  ASSERT_EQ(create(f).status, create_status::created);
  append("fork", "X");
  {
    // A consistent copy, as a restore would bring.
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_ / "ordo.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    std::string sql = "VACUUM INTO '" + (dir_ / "copy.db").string() + "'";
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  }
  append("s", "c");  // only in the old file
  auto old = engine_->find("s");
  std::uint64_t old_epoch = engine_->database_epoch();
  std::atomic<bool> woken{false};
  old->add_waiter([&] { woken = true; });
  EXPECT_EQ(engine_->generation(), 1u);

  fs::rename(dir_ / "copy.db", dir_ / "ordo.db");
  ASSERT_TRUE(eventually([&] { return engine_->generation() == 2 && engine_->writable(); }));
  EXPECT_NE(engine_->database_epoch(), old_epoch);
  EXPECT_EQ(old->state().lifecycle, stream_lifecycle::replaced);
  EXPECT_TRUE(woken);

  // A read planned against the old record never reads the new file with the old ids.
  std::promise<read_result> p;
  engine_->read(old, 0, [&](read_result r) { p.set_value(std::move(r)); });
  read_result stale = p.get_future().get();
  ASSERT_FALSE(stale.chunk);
  EXPECT_EQ(stale.error.code, "database_replaced");

  auto now = engine_->find("s");
  ASSERT_TRUE(now);
  EXPECT_NE(now, old);
  EXPECT_EQ(now->config().generation, 2u);
  EXPECT_NE(now->config().offset_prefix, old->config().offset_prefix);
  EXPECT_EQ(now->state().tail, 2u);
  EXPECT_EQ(read_all("s"), "ab");
  EXPECT_EQ(read_all("fork"), "aX");
  EXPECT_EQ(append("s", "d").tail, 3u);
  EXPECT_EQ(read_all("s"), "abd");

  std::uint64_t epoch = engine_->database_epoch();
  open();
  EXPECT_EQ(engine_->database_epoch(), epoch);
  EXPECT_EQ(read_all("s"), "abd");
  EXPECT_EQ(read_all("fork"), "aX");
}

TEST_F(stream_engine_test, an_invalid_replacement_is_refused_and_writes_stay_refused) {
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  {
    std::ofstream garbage(dir_ / "garbage");
    garbage << std::string(16384, 'g');
  }
  fs::rename(dir_ / "garbage", dir_ / "ordo.db");
  ASSERT_TRUE(eventually([&] { return !engine_->writable(); }));
  append_result r = append("s", "b");
  EXPECT_EQ(r.status, append_status::failed);
  EXPECT_EQ(r.error.code, "storage_replaced");
  EXPECT_EQ(engine_->generation(), 1u);
  EXPECT_EQ(read_all("s"), "a");  // reads go on from the old file
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(stream_engine_test, a_full_write_queue_refuses_appends_with_overloaded_not_silence) {
  open([](stream_engine_options& o) {
    o.max_write_queue_jobs = 2;
    o.max_write_queue_bytes = 10;
  });
  ASSERT_EQ(create("s").status, create_status::created);
  gate_.arm();
  auto blocker = append_async(data_request("s", "0"));
  gate_.wait_until_held();
  auto a = append_async(data_request("s", "12345678"));   // 8 of the 10 bytes
  auto too_big = append_async(data_request("s", "abc"));  // 11 bytes queued: refused
  auto b = append_async(data_request("s", "x"));          // 9 bytes, second job: accepted
  auto too_many = append_async(data_request("s", "y"));   // third job: refused
  append_result refused_bytes = too_big.get();
  append_result refused_jobs = too_many.get();
  EXPECT_EQ(refused_bytes.status, append_status::overloaded);
  EXPECT_EQ(refused_bytes.error.kind, failure_kind::unavailable);
  EXPECT_EQ(refused_jobs.status, append_status::overloaded);
  gate_.release();
  blocker.get();
  EXPECT_EQ(a.get().status, append_status::appended);
  EXPECT_EQ(b.get().status, append_status::appended);
  EXPECT_EQ(read_all("s"), "012345678x");
}

TEST_F(stream_engine_test, appends_to_missing_or_mismatched_streams_are_refused) {
  EXPECT_EQ(append("missing", "x").status, append_status::not_found);
  ASSERT_EQ(create("s", "text/plain").status, create_status::created);
  EXPECT_EQ(append_async(data_request("s", "{}", "application/json")).get().status,
            append_status::content_type_mismatch);
  EXPECT_EQ(engine_->find("s")->state().tail, 0u);
}

TEST_F(stream_engine_test, forks_of_missing_sources_or_beyond_the_tail_are_refused) {
  create_request f;
  f.path = "fork";
  f.fork_source_path = "nothing";
  EXPECT_EQ(create(f).status, create_status::source_not_found);
  ASSERT_EQ(create("src").status, create_status::created);
  f.fork_source_path = "src";
  f.fork_offset = stream_offset{engine_->find("src")->config().offset_prefix, 5};
  EXPECT_EQ(create(f).status, create_status::invalid);
  f.fork_offset = stream_offset{12345, 0};  // minted for another stream
  EXPECT_EQ(create(f).status, create_status::invalid);
  f.fork_offset.reset();
  f.content_type = "application/json";
  EXPECT_EQ(create(f).status, create_status::config_conflict);
  EXPECT_EQ(engine_->find("fork"), nullptr);
}

TEST_F(stream_engine_test, a_failed_create_leaves_nothing_behind) {
  fault_ = [](std::string_view point, std::string_view) -> status {
    if (point == "create.after_insert") {
      return make_failure(failure_kind::insufficient_storage, "storage_full", "injected");
    }
    return ok_v;
  };
  create_request c;
  c.path = "s";
  c.initial_data = "body";
  EXPECT_EQ(create(c).status, create_status::failed);
  EXPECT_EQ(engine_->find("s"), nullptr);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM streams"), 0);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM " + k_all_messages), 0);
}

}  // namespace
}  // namespace ordo

namespace ordo {
namespace {

// Regression: once retention removed every message, the derived tail fell back to zero and the
// next append reused position 1.
TEST_F(stream_engine_test, positions_are_never_reused_after_retention_removed_every_message) {
  ASSERT_EQ(create("feed").status, create_status::created);
  append("feed", "a");
  append("feed", "b");
  std::int64_t id = engine_->find("feed")->config().id;
  std::promise<std::optional<failure>> pruned;
  write_job job;
  job.run = [id](write_context& ctx) { return ctx.prune(id, 2); };
  job.done = [&](const std::optional<failure>& f) { pruned.set_value(f); };
  ASSERT_TRUE(engine_->submit(std::move(job)));
  ASSERT_FALSE(pruned.get_future().get());
  EXPECT_EQ(engine_->find("feed")->state().pruned_upto, 2u);
  EXPECT_EQ(count_rows("SELECT COUNT(*) FROM " + k_all_messages), 0);
  EXPECT_EQ(append("feed", "c").tail, 3u);
  open();
  EXPECT_EQ(engine_->find("feed")->state().pruned_upto, 2u);
  EXPECT_EQ(engine_->find("feed")->state().tail, 3u);
  EXPECT_EQ(append("feed", "d").tail, 4u);
}

// Regression: a write job that failed returned a bare false, and `done` was told "no failure",
// so background jobs (the reaper, change-feed retention) lost their errors without a log line.
TEST_F(stream_engine_test, a_write_job_that_fails_gets_its_failure_and_keeps_nothing) {
  ASSERT_EQ(create("s").status, create_status::created);
  std::int64_t id = engine_->find("s")->config().id;
  std::promise<std::optional<failure>> refused;
  write_job job;
  job.run = [id](write_context& ctx) -> status {
    if (auto appended = ctx.append(id, "half-done"); !appended) return std::move(appended).error();
    return make_failure(failure_kind::conflict, "refused_on_purpose", "the job said no");
  };
  job.done = [&](const std::optional<failure>& f) { refused.set_value(f); };
  ASSERT_TRUE(engine_->submit(std::move(job)));
  std::optional<failure> f = refused.get_future().get();
  ASSERT_TRUE(f);
  EXPECT_EQ(f->code, "refused_on_purpose");
  EXPECT_EQ(engine_->find("s")->state().tail, 0u);  // its append was rolled back and not shown
  EXPECT_EQ(append("s", "after").tail, 1u);         // the position was not used up
  EXPECT_EQ(read_all("s"), "after");
}

TEST_F(stream_engine_test, a_read_meeting_a_prune_committed_but_not_yet_published_says_pruned) {
  ASSERT_EQ(create("feed").status, create_status::created);
  append("feed", "a");
  append("feed", "b");
  append("feed", "c");
  open();  // a fresh engine: reads come from the file, not from the tail cache
  auto record = engine_->find("feed");
  std::int64_t id = record->config().id;
  one_shot_gate flush;
  set_flush_fault([&] { return flush.hold(); });
  flush.arm();
  std::promise<std::optional<failure>> pruned;
  write_job job;
  job.run = [id](write_context& ctx) { return ctx.prune(id, 2); };
  job.done = [&](const std::optional<failure>& f) { pruned.set_value(f); };
  ASSERT_TRUE(engine_->submit(std::move(job)));
  flush.wait_until_held();  // committed: readers see the rows gone; published only after this
  EXPECT_EQ(record->state().pruned_upto, 0u);
  std::promise<read_result> read;
  engine_->read(record, 0, [&](read_result r) { read.set_value(std::move(r)); });
  read_result r = read.get_future().get();
  EXPECT_FALSE(r.chunk);
  EXPECT_EQ(r.error.code, "offset_pruned") << r.error.message;
  flush.release();
  EXPECT_FALSE(pruned.get_future().get());
  EXPECT_EQ(record->state().pruned_upto, 2u);
}

}  // namespace
}  // namespace ordo
