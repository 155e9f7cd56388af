// stream_tables against a real SQLite file: the writer's tail (with its cached log tails) and
// the readers' stream_tail() agree wherever a stream's messages are, and the append log moves
// into `messages` whole and in order. Error paths: statements on a closed transaction, a
// duplicate position.
#include "storage/sqlite/stream_tables.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "storage/sqlite/migrations.hpp"

namespace ordo::sqlite {
namespace {

using tail_pair = std::pair<stream_position, stream_position>;
tail_pair both(std::uint64_t tail) {
  return {stream_position{tail}, stream_position{tail}};
}

class stream_tables_test : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir() + "stream_tables_test.db";
    std::remove(path_.c_str());
    auto db = connection::open(path_, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    db_.emplace(std::move(*db));
    ASSERT_TRUE(migrate(*db_));
    auto t = stream_tables::prepare(*db_);
    ASSERT_TRUE(t) << t.error().message;
    tables_.emplace(std::move(*t));
    cache_.emplace(*db_);
  }
  void TearDown() override {
    tables_.reset();
    cache_.reset();
    db_.reset();
    std::remove(path_.c_str());
  }

  stream_row create(const std::string& path, std::uint64_t base_seq = 0,
                    std::optional<stream_id> source = std::nullopt) {
    stream_row row;
    row.path = path;
    row.content_type = "text/plain";
    row.incarnation = 7;
    row.base_seq = stream_position{base_seq};
    row.fork_source_id = source;
    auto id = tables_->insert_stream(row);
    EXPECT_TRUE(id);
    row.id = *id;
    return row;
  }
  // Both definitions of the tail, which must agree.
  tail_pair tails(const stream_row& row) {
    auto fresh = tables_->find_by_id(row.id);
    EXPECT_TRUE(fresh && *fresh);
    auto writer = tables_->tail(**fresh);
    auto reader = stream_tail(*cache_, row.id);
    EXPECT_TRUE(writer);
    EXPECT_TRUE(reader);
    return {*writer, *reader};
  }

  std::string path_;
  std::optional<connection> db_;
  std::optional<stream_tables> tables_;
  std::optional<statement_cache> cache_;
};

TEST_F(stream_tables_test, the_writers_tail_and_stream_tail_agree_wherever_the_messages_are) {
  ASSERT_TRUE(tables_->begin_immediate());
  stream_row a = create("a");
  EXPECT_EQ(tails(a), both(0));
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{1}, "one"));  // small: the append log
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{2}, "two"));
  EXPECT_EQ(tails(a), both(2));
  ASSERT_TRUE(tables_->merge_log());  // now in `messages`
  EXPECT_EQ(tables_->log_rows(), 0);
  EXPECT_EQ(tails(a), both(2));
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{3},
                                      std::string(4096, 'x')));  // large, log empty
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{4}, "four"));
  EXPECT_EQ(tails(a), both(4));
  // A fork with no messages of its own: its base.
  stream_row fork = create("fork", 3, a.id);
  EXPECT_EQ(tails(fork), both(3));
  // Retention removed everything: never below what was pruned.
  ASSERT_TRUE(tables_->prune_upto(a.id, stream_position{4}));
  EXPECT_EQ(tails(a), both(4));
  ASSERT_TRUE(tables_->commit());
  auto missing = stream_tail(*cache_, stream_id{999});
  ASSERT_TRUE(missing);
  EXPECT_EQ(*missing, stream_position::start());
}

TEST_F(stream_tables_test, reads_span_messages_and_the_append_log_in_order) {
  ASSERT_TRUE(tables_->begin_immediate());
  stream_row a = create("a");
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{1}, "1"));
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{2}, "2"));
  ASSERT_TRUE(tables_->merge_log());
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{3}, "3"));
  auto read = tables_->read_messages(a.id, stream_position{0}, stream_position{3}, 1 << 20);
  ASSERT_TRUE(read);
  std::string seen;
  for (const auto& m : *read)
    seen += std::to_string(m.seq.value()) + ":" + m.data + " ";
  EXPECT_EQ(seen, "1:1 2:2 3:3 ");
  auto bounded = tables_->read_messages(a.id, stream_position{1}, stream_position{3},
                                        1);  // at least one message
  ASSERT_TRUE(bounded);
  ASSERT_EQ(bounded->size(), 1u);
  EXPECT_EQ(bounded->front().seq, stream_position{2});
  ASSERT_TRUE(tables_->commit());
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(stream_tables_test, a_position_stored_twice_is_refused) {
  ASSERT_TRUE(tables_->begin_immediate());
  stream_row a = create("a");
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{1},
                                      std::string(4096, 'x')));  // straight to messages
  ASSERT_TRUE(tables_->merge_log());
  ASSERT_TRUE(tables_->insert_message(a.id, stream_position{2}, "2"));
  ASSERT_TRUE(tables_->merge_log());
  EXPECT_FALSE(tables_->insert_message(a.id, stream_position{2}, std::string(4096, 'y')))
      << "messages_by_position keeps (stream_id, seq) unique";
  ASSERT_TRUE(tables_->rollback());
}

TEST_F(stream_tables_test, a_stream_state_outside_the_schema_is_storage_corrupt_not_undefined) {
  stream_row row = create("chat/1");
  // What a file edited outside ordo may hold: the CHECK (state IN (0, 1, 2)) switched off.
  ASSERT_TRUE(db_->exec("PRAGMA ignore_check_constraints = ON"));
  ASSERT_TRUE(
      db_->exec("UPDATE streams SET state = 7 WHERE id = " + std::to_string(row.id.value())));
  auto found = tables_->find_by_id(row.id);
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, k_storage_corrupt);
  EXPECT_NE(found.error().message.find("holds 7"), std::string::npos) << found.error().message;
  // Loading at startup selects live and soft-deleted streams only: the damaged row is not one.
  auto loaded = tables_->load_streams();
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_TRUE(loaded->empty());
}

TEST_F(stream_tables_test, commit_without_a_transaction_fails_with_an_error) {
  auto s = tables_->commit();
  EXPECT_FALSE(s);
}

}  // namespace
}  // namespace ordo::sqlite
