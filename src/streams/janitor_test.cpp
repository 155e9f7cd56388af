// The janitor: the tail caches' global budget and the moves of the append log.
#include "streams/stream_engine_test_fixture.hpp"

namespace ordo::engine_test {
namespace {

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
  EXPECT_FALSE(old->read_cached(stream_position{0}, stream_position{1}, 1 << 20));
  EXPECT_EQ(recent->cache_bytes(), 60u);
  EXPECT_TRUE(recent->read_cached(stream_position{0}, stream_position{1}, 1 << 20));
  EXPECT_EQ(read_all("old"), sixty);  // from the database
  append("old", "y");                 // the cache fills again from the next commit
  EXPECT_TRUE(old->read_cached(stream_position{1}, stream_position{2}, 1 << 20));
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
    ASSERT_EQ(append("a", "a" + std::to_string(i)).tail,
              stream_position{static_cast<std::uint64_t>(i)});
    ASSERT_EQ(append("b", "b" + std::to_string(i)).tail,
              stream_position{static_cast<std::uint64_t>(i)});
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
  EXPECT_TRUE(engine_->writable());                      // not an unknown outcome: writes go on
  EXPECT_EQ(append("s", "c").tail, stream_position{3});  // the tail still counts what the log holds
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
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{3});
  EXPECT_EQ(read_all("s"), "abc");
  EXPECT_EQ(append("s", "d").tail,
            stream_position{4});  // the next position, not one the log already holds
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

}  // namespace
}  // namespace ordo::engine_test
