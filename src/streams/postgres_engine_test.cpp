// The stream engine on PostgreSQL (streams/postgres_storage.cpp) where only a unit test can reach:
// - a COMMIT whose connection breaks on the way has an unknown outcome. It is never acknowledged
//   (503 storage_commit_unknown), the writer connects again, and the producer's retry is stored
//   once;
// - two nodes whose batches name the same streams in opposite orders, held mid-batch until both
//   are in: neither waits for the other in a cycle (PostgreSQL would abort one as deadlocked), and
//   a fork created while its source is deleted never outlives the source's data.
// Everything else the engine does on PostgreSQL is proven black-box (conformance_postgres,
// postgres_cluster).
#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

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

// Two nodes (two engines) on one database. Each one's writer can be held at a named point of
// a batch until both have reached it, or a while has passed: a node whose batch waits for the
// other's locks never arrives, and the other goes on alone.
class PostgresTwoNodesTest : public postgres::testing::migrated_postgres_test {
 protected:
  void SetUp() override {
    migrated_postgres_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    for (auto* node : {&a_, &b_}) {
      stream_engine_options o;
      o.postgres_url = url();
      o.fault_injector = [this](std::string_view point, std::string_view path) -> status {
        if (point == "batch.begin") hold_writers();
        if (point == meet_at_ && !path.starts_with("hold-")) meet();
        return ok_v;
      };
      auto e = stream_engine::open(std::move(o));
      ASSERT_TRUE(e) << e.error().message;
      *node = std::move(*e);
    }
  }
  void TearDown() override {
    release_writers();
    for (auto* node : {&a_, &b_})
      if (*node) (*node)->stop();
  }

  // While held, a writer that starts a batch waits, so what is submitted meanwhile forms its next
  // batch.
  void hold(stream_engine& node) {
    std::promise<void> started;
    {
      std::lock_guard lock(mu_);
      held_ = true;
    }
    create_request c;  // any batch: the writer takes it and waits at its start
    c.path = "hold-" + std::to_string(++holds_);
    c.content_type = "text/plain";
    node.create(std::move(c), [](create_result) {});
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return holding_ == holds_; });
  }
  void release_writers() {
    std::lock_guard lock(mu_);
    held_ = false;
    cv_.notify_all();
  }
  void hold_writers() {
    std::unique_lock lock(mu_);
    if (!held_) return;
    ++holding_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_; });
  }
  void meet() {
    std::unique_lock lock(mu_);
    ++met_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::milliseconds(1500), [&] { return met_ >= 2; });
  }

  create_result create(stream_engine& node, std::string path,
                       std::optional<std::string> fork_of = std::nullopt) {
    std::promise<create_result> done;
    node.create(create_of(std::move(path), std::move(fork_of)),
                [&](create_result r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  static create_request create_of(std::string path, std::optional<std::string> fork_of) {
    create_request c;
    c.path = std::move(path);
    c.content_type = "text/plain";
    c.fork_source_path = std::move(fork_of);
    c.now_ms = engine_internal_now();
    return c;
  }
  static std::int64_t engine_internal_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static append_request append_of(std::string path) {
    append_request r;
    r.path = std::move(path);
    r.media_type = "text/plain";
    r.data = "m";
    r.now_ms = engine_internal_now();
    return r;
  }
  // Makes `node` check `path` against the table, as a request for it would (another node created
  // it).
  static bool knows(stream_engine& node, std::string path) {
    std::promise<status> done;
    node.refresh(path, [&](status s) { done.set_value(std::move(s)); });
    status s = done.get_future().get();
    return s && node.find(path);
  }

  std::unique_ptr<stream_engine> a_, b_;
  std::string meet_at_ = "none";
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  int holds_ = 0, holding_ = 0, met_ = 0;
};

TEST_F(PostgresTwoNodesTest, BatchesThatAppendAndDeleteInOppositeOrdersDoNotDeadlock) {
  ASSERT_EQ(create(*a_, "x").status, create_status::created);
  ASSERT_EQ(create(*a_, "y").status, create_status::created);
  ASSERT_TRUE(knows(*b_, "x") && knows(*b_, "y"));

  // Node A's batch appends to x and deletes y; node B's appends to y and deletes x. Each append
  // locks its stream; both then meet, and each delete needs the stream the other node appended to.
  meet_at_ = "append.after_insert";
  hold(*a_);
  hold(*b_);
  std::promise<append_result> a1, b1;
  std::promise<delete_result> a2, b2;
  a_->append(append_of("x"), [&](append_result r) { a1.set_value(std::move(r)); });
  a_->remove("y", [&](delete_result r) { a2.set_value(std::move(r)); });
  b_->append(append_of("y"), [&](append_result r) { b1.set_value(std::move(r)); });
  b_->remove("x", [&](delete_result r) { b2.set_value(std::move(r)); });
  release_writers();

  // One batch goes first, whole; the other sees its effects (or the other way round). No batch
  // fails: PostgreSQL aborts a deadlocked one (storage_busy).
  auto ra1 = a1.get_future().get(), rb1 = b1.get_future().get();
  auto ra2 = a2.get_future().get(), rb2 = b2.get_future().get();
  EXPECT_NE(ra1.status, append_status::failed) << ra1.error.message;
  EXPECT_NE(rb1.status, append_status::failed) << rb1.error.message;
  EXPECT_NE(ra2.status, delete_status::failed) << ra2.error.message;
  EXPECT_NE(rb2.status, delete_status::failed) << rb2.error.message;
  EXPECT_EQ(ra2.status, delete_status::deleted);
  EXPECT_EQ(rb2.status, delete_status::deleted);
  // Whichever batch went second found its append's stream deleted by the first.
  EXPECT_TRUE((ra1.status == append_status::appended) != (rb1.status == append_status::appended))
      << static_cast<int>(ra1.status) << " " << static_cast<int>(rb1.status);
}

TEST_F(PostgresTwoNodesTest, BatchesThatCreateTheSamePathsInOppositeOrdersDoNotDeadlock) {
  // Each create inserts its path's row; both then meet, and each next create needs the path the
  // other node inserted (its unique index entry).
  meet_at_ = "create.after_insert";
  hold(*a_);
  hold(*b_);
  std::promise<create_result> a1, a2, b1, b2;
  a_->create(create_of("p", std::nullopt), [&](create_result r) { a1.set_value(std::move(r)); });
  a_->create(create_of("q", std::nullopt), [&](create_result r) { a2.set_value(std::move(r)); });
  b_->create(create_of("q", std::nullopt), [&](create_result r) { b1.set_value(std::move(r)); });
  b_->create(create_of("p", std::nullopt), [&](create_result r) { b2.set_value(std::move(r)); });
  release_writers();

  std::vector<create_result> all = {a1.get_future().get(), a2.get_future().get(),
                                    b1.get_future().get(), b2.get_future().get()};
  int created = 0;
  for (const create_result& r : all) {
    EXPECT_TRUE(r.status == create_status::created || r.status == create_status::exists)
        << static_cast<int>(r.status) << " " << r.error.message;
    created += r.status == create_status::created;
  }
  EXPECT_EQ(created, 2);
}

TEST_F(PostgresTwoNodesTest, AForkCreatedWhileItsSourceIsDeletedNeverReadsPurgedData) {
  ASSERT_EQ(create(*a_, "src").status, create_status::created);
  ASSERT_TRUE(knows(*b_, "src"));

  // Node B forks src while node A deletes it; both batches also append to a stream of their own
  // (where they meet), so each is mid-batch when the other starts.
  ASSERT_EQ(create(*a_, "own-a").status, create_status::created);
  ASSERT_EQ(create(*a_, "own-b").status, create_status::created);
  ASSERT_TRUE(knows(*a_, "own-a") && knows(*b_, "own-b"));
  meet_at_ = "append.after_insert";
  hold(*a_);
  hold(*b_);
  std::promise<append_result> a1, b1;
  std::promise<delete_result> deleted;
  std::promise<create_result> forked;
  a_->append(append_of("own-a"), [&](append_result r) { a1.set_value(std::move(r)); });
  a_->remove("src", [&](delete_result r) { deleted.set_value(std::move(r)); });
  b_->append(append_of("own-b"), [&](append_result r) { b1.set_value(std::move(r)); });
  b_->create(create_of("fork", "src"), [&](create_result r) { forked.set_value(std::move(r)); });
  release_writers();
  EXPECT_EQ(a1.get_future().get().status, append_status::appended);
  EXPECT_EQ(b1.get_future().get().status, append_status::appended);
  auto d = deleted.get_future().get();
  auto f = forked.get_future().get();
  ASSERT_EQ(d.status, delete_status::deleted) << d.error.message;

  // Either the fork came first (the source lives on, soft-deleted, for it), or the delete did
  // (the fork finds no source). Never a fork of a source whose data is being purged.
  auto db = connect();
  ASSERT_TRUE(db);
  auto source = db->query(
      "SELECT s.state FROM streams f JOIN streams s ON s.id = f.fork_source_id WHERE f.path = "
      "'fork'");
  ASSERT_TRUE(source) << source.error().message;
  if (f.status == create_status::created) {
    ASSERT_EQ(source->size(), 1);
    EXPECT_EQ(source->int64(0, 0), 1) << "the source is soft-deleted (1), not purging (2)";
  } else {
    EXPECT_EQ(f.status, create_status::source_not_found) << f.error.message;
    EXPECT_EQ(source->size(), 0);
  }
}

}  // namespace
}  // namespace ordo
