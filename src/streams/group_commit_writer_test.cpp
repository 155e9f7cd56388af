// The writer's flush (wal_syncer), on the writer's thread (the default) and pipelined on a
// thread of its own: writers are answered and effects published only once their commit is on
// disk, and a failed flush refuses every later write.
#include "streams/stream_engine_test_fixture.hpp"

namespace ordo::engine_test {
namespace {

void flush_on_own_thread(stream_engine_options& o) {
  o.wal_flush = sqlite::wal_flush::thread;
}

// ---- on the writer's thread (--wal-flush writer) ---------------------------------------------

TEST_F(stream_engine_test, on_the_writer_appends_that_arrive_during_a_flush_form_the_next_batch) {
  ASSERT_EQ(create("s").status, create_status::created);
  one_shot_gate flush;
  set_flush_fault([&] { return flush.hold(); });
  flush.arm();
  auto first = append_async(data_request("s", "a"));
  flush.wait_until_held();
  // The writer itself is flushing: nothing else runs, and nothing is acknowledged or shown.
  auto second = append_async(data_request("s", "b"));
  auto third = append_async(data_request("s", "c"));
  EXPECT_EQ(first.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  EXPECT_EQ(count_rows("SELECT count(*) FROM " + k_all_messages), 1);
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{0});
  writer_stats before = engine_->stats();  // the first batch is counted once answered
  flush.release();
  EXPECT_EQ(first.get().tail, stream_position{1});
  EXPECT_EQ(second.get().tail, stream_position{2});
  EXPECT_EQ(third.get().tail, stream_position{3});
  // The two that waited share one transaction: two batches, three jobs.
  writer_stats after = engine_->stats();
  EXPECT_EQ(after.transactions_committed, before.transactions_committed + 2);
  EXPECT_EQ(after.jobs_committed, before.jobs_committed + 3);
  EXPECT_EQ(read_all("s"), "abc");
}

// ---- pipelined (--wal-flush thread) ------------------------------------------------------------

TEST_F(stream_engine_test, an_append_is_acknowledged_and_published_only_after_its_flush) {
  open(flush_on_own_thread);
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
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{0});
  flush.release();
  EXPECT_EQ(first.get().tail, stream_position{1});
  EXPECT_EQ(second.get().tail, stream_position{2});
  EXPECT_EQ(read_all("s"), "ab");
}

TEST_F(stream_engine_test, a_batch_is_answered_once_flushed_without_waiting_for_the_next_commit) {
  open(flush_on_own_thread);
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
  EXPECT_EQ(first.get().tail, stream_position{1});
  EXPECT_EQ(second.get().tail, stream_position{1});
  EXPECT_EQ(third.get().tail, stream_position{2});
}

TEST_F(stream_engine_test, a_read_answers_only_once_what_it_saw_is_on_disk) {
  open(flush_on_own_thread);
  ASSERT_EQ(create("s").status, create_status::created);
  one_shot_gate flush;
  set_flush_fault([&] { return flush.hold(); });
  flush.arm();
  auto appended = append_async(data_request("s", "a"));
  flush.wait_until_held();
  std::promise<std::int64_t> seen;
  ASSERT_TRUE(engine_->read_with(
      [&](storage::read_snapshot& ctx) {
        // No ASSERT on the reader thread: it would return without answering and hang the test.
        auto count = ctx.sql.get("SELECT count(*) FROM " + k_all_messages);
        EXPECT_TRUE(count);
        std::int64_t n = -2;
        if (count) {
          storage::sql_statement_use use(*count);
          auto row = use->step();
          EXPECT_TRUE(row && *row);
          if (row && *row) n = use->column_int64(0);
        }
        EXPECT_TRUE(engine_->await_durable());
        seen.set_value(n);
      },
      [](const failure&) {}));
  auto answer = seen.get_future();
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  flush.release();
  EXPECT_EQ(answer.get(), 1);
  EXPECT_EQ(appended.get().status, append_status::appended);
}

// ---- both -------------------------------------------------------------------------------------

class flush_modes_test : public stream_engine_test,
                         public ::testing::WithParamInterface<sqlite::wal_flush> {
 protected:
  void SetUp() override {
    stream_engine_test::SetUp();
    open([](stream_engine_options& o) { o.wal_flush = GetParam(); });
  }
};

INSTANTIATE_TEST_SUITE_P(both, flush_modes_test,
                         ::testing::Values(sqlite::wal_flush::writer, sqlite::wal_flush::thread),
                         [](const auto& info) {
                           return info.param == sqlite::wal_flush::writer ? "writer" : "thread";
                         });

TEST_P(flush_modes_test, a_failed_flush_fails_its_writers_and_refuses_all_later_writes) {
  ASSERT_EQ(create("s").status, create_status::created);
  set_flush_fault([] {
    return make_failure(failure_kind::unavailable, "storage_io_error", "injected fdatasync error");
  });
  append_result r = append("s", "x");
  EXPECT_EQ(r.status, append_status::failed);
  EXPECT_EQ(r.error.code, "storage_io_error");
  EXPECT_EQ(engine_->find("s")->state().tail, stream_position{0});  // never shown to readers
  EXPECT_FALSE(engine_->writable());
  EXPECT_FALSE(engine_->await_durable());
  set_flush_fault(nullptr);
  append_result later = append("s", "y");
  EXPECT_EQ(later.status, append_status::failed);
  EXPECT_EQ(later.error.code, "storage_poisoned");
}

TEST_P(flush_modes_test, a_failed_flush_of_a_maintenance_commit_publishes_nothing_and_poisons) {
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

TEST_P(flush_modes_test, with_sync_normal_nothing_is_flushed_by_ordo) {
  open([](stream_engine_options& o) {
    o.database.sync = sqlite::sync_mode::normal;
    o.wal_flush = GetParam();
  });
  std::atomic<int> flushes{0};
  set_flush_fault([&]() -> status {
    ++flushes;
    return ok_v;
  });
  ASSERT_EQ(create("s").status, create_status::created);
  EXPECT_EQ(append("s", "x").tail, stream_position{1});
  EXPECT_EQ(flushes, 0);
}

}  // namespace
}  // namespace ordo::engine_test
