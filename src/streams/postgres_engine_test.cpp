// The stream engine on PostgreSQL (streams/postgres_storage.cpp) where only a unit test can reach:
// a COMMIT whose connection breaks on the way has an unknown outcome. It is never acknowledged
// (503 storage_commit_unknown), the writer connects again, and the producer's retry is stored
// once. Everything else the engine does on PostgreSQL is proven black-box (conformance_postgres,
// postgres_cluster).
#include <gtest/gtest.h>

#include <future>

#include "storage/postgres/scratch_cluster.hpp"
#include "streams/stream_engine.hpp"

namespace ordo {
namespace {

class PostgresEngineTest : public postgres::testing::migrated_postgres_test {
 protected:
  void SetUp() override {
    migrated_postgres_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    stream_engine_options o;
    o.postgres_url = url();
    o.postgres_max_backoff = std::chrono::milliseconds(200);
    o.fault_injector = [this](std::string_view point, std::string_view) -> status {
      if (point == "commit" && break_next_commit_.exchange(false)) {
        // The writer's backend goes away just before COMMIT is sent.
        auto admin = connect();
        if (!admin) return std::move(admin).error();
        (void)admin->query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
            "'ordo-writer' AND datname = current_database()");
      }
      return ok_v;
    };
    auto e = stream_engine::open(std::move(o));
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(*e);
  }
  void TearDown() override {
    if (engine_) engine_->stop();
  }

  append_result append(std::string data, std::uint64_t seq) {
    append_request r;
    r.path = "s";
    r.media_type = "text/plain";
    r.data = std::move(data);
    r.producer = producer_claim{"p", 0, seq};
    r.now_ms = 1;
    std::promise<append_result> done;
    engine_->append(std::move(r), [&](append_result res) { done.set_value(std::move(res)); });
    return done.get_future().get();
  }

  std::atomic<bool> break_next_commit_{false};
  std::unique_ptr<stream_engine> engine_;
};

TEST_F(PostgresEngineTest, ACommitOfUnknownOutcomeIsNeverAcknowledgedAndTheRetryResolvesIt) {
  create_request c;
  c.path = "s";
  c.content_type = "text/plain";
  std::promise<create_result> created;
  engine_->create(std::move(c), [&](create_result r) { created.set_value(std::move(r)); });
  ASSERT_EQ(created.get_future().get().status, create_status::created);
  ASSERT_EQ(append("a", 0).status, append_status::appended);

  break_next_commit_ = true;
  append_result lost = append("b", 1);
  EXPECT_EQ(lost.status, append_status::failed);
  EXPECT_EQ(lost.error.code, postgres::k_commit_unknown) << lost.error.message;
  EXPECT_EQ(lost.error.kind, failure_kind::unavailable);

  // The producer retries until the writer is connected again: stored once, at position 2.
  append_result retried;
  for (int i = 0; i < 100; ++i) {
    retried = append("b", 1);
    if (retried.status != append_status::failed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(retried.status, append_status::appended) << retried.error.message;
  EXPECT_EQ(retried.tail, stream_position{2});
  EXPECT_EQ(append("b", 1).status, append_status::duplicate);
  EXPECT_TRUE(engine_->writable());

  auto db = connect();
  ASSERT_TRUE(db);
  auto stored = db->query_int64("SELECT count(*) FROM messages");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->value_or(-1), 2);
}

}  // namespace
}  // namespace ordo
