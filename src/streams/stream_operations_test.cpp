// Stream jobs across their lifetime: forks, deletion, expiry, restart and recreation.
#include "streams/stream_engine_test_fixture.hpp"

namespace ordo::engine_test {
namespace {

// ---- forks, deletion, expiry -----------------------------------------------------------------

TEST_F(stream_engine_test, a_fork_reads_through_its_source_and_diverges) {
  ASSERT_EQ(create("src").status, create_status::created);
  append("src", "A");
  append("src", "B");
  ASSERT_EQ(create(fork_request("fork", "src", offset_at("src", stream_position{1}))).status,
            create_status::created);
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
  create_request f = fork_request("fork", "src", stream_offset{});
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
  ASSERT_EQ(create(fork_request("fork", "src")).status, create_status::created);

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
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{2});
  EXPECT_EQ(append("s", "c").tail, stream_position{3});
  EXPECT_EQ(read_all("s"), "abc");
}

TEST_F(stream_engine_test, a_recreated_stream_gets_a_new_offset_prefix) {
  ASSERT_EQ(create("s").status, create_status::created);
  std::uint64_t first = engine_->find("s")->config().offset_prefix;
  ASSERT_EQ(remove("s").status, delete_status::deleted);
  ASSERT_EQ(create("s").status, create_status::created);
  EXPECT_NE(engine_->find("s")->config().offset_prefix, first);
}

}  // namespace
}  // namespace ordo::engine_test
