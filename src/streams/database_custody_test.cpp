// The database file replaced under the engine: a valid replacement is adopted, an invalid one
// refused.
#include "streams/stream_engine_test_fixture.hpp"

namespace ordo::engine_test {
namespace {

// ---- the database file replaced under the engine -----------------------------------------

TEST_F(stream_engine_test,
       a_valid_replacement_is_adopted_with_a_new_epoch_and_old_records_retired) {
  open([](stream_engine_options& o) { o.tail_cache_bytes = 0; });  // every read goes to SQLite
  ASSERT_EQ(create("s").status, create_status::created);
  append("s", "a");
  append("s", "b");
  ASSERT_EQ(create(fork_request("fork", "s", offset_at("s", stream_position{1}))).status,
            create_status::created);
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
  engine_->read(old, stream_position{0}, [&](read_result r) { p.set_value(std::move(r)); });
  read_result stale = p.get_future().get();
  ASSERT_FALSE(stale.chunk);
  EXPECT_EQ(stale.error.code, "database_replaced");

  auto now = engine_->find("s");
  ASSERT_TRUE(now);
  EXPECT_NE(now, old);
  EXPECT_EQ(now->config().generation, 2u);
  EXPECT_NE(now->config().offset_prefix, old->config().offset_prefix);
  EXPECT_EQ(now->state().tail, stream_position{2});
  EXPECT_EQ(read_all("s"), "ab");
  EXPECT_EQ(read_all("fork"), "aX");
  EXPECT_EQ(append("s", "d").tail, stream_position{3});
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

}  // namespace
}  // namespace ordo::engine_test
