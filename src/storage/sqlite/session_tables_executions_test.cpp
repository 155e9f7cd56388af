// session_tables' executions against a real SQLite file: one is active until finished, and
// finishes once. Error paths: a second active execution is refused, and an unknown stored finish
// reason reads as a damaged database.
#include "storage/sqlite/session_tables_test_fixture.hpp"

namespace ordo::sqlite::tables_test {
namespace {

TEST_P(session_tables_test, an_execution_is_active_until_finished_and_finishes_once) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_execution({"s1", 1, 100, std::nullopt, std::nullopt}));
  auto active = tables_->active_execution("s1");
  ASSERT_TRUE(active && *active);
  EXPECT_EQ((*active)->generation, 1);
  EXPECT_FALSE((*active)->finished_at_ms);

  ASSERT_TRUE(tables_->finish_execution("s1", 1, 200, finish_reason::completed));
  ASSERT_TRUE(
      tables_->finish_execution("s1", 1, 300, finish_reason::failed));  // already finished: no-op
  auto done = tables_->execution("s1", 1);
  ASSERT_TRUE(done && *done);
  EXPECT_EQ((*done)->finished_at_ms, 200);
  EXPECT_EQ((*done)->finish_reason, finish_reason::completed);
  active = tables_->active_execution("s1");
  ASSERT_TRUE(active);
  EXPECT_FALSE(*active);

  ASSERT_TRUE(tables_->insert_execution({"s1", 2, 400, std::nullopt, std::nullopt}));
  auto all = tables_->executions("s1");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].generation, 1);
  EXPECT_EQ((*all)[1].generation, 2);
  EXPECT_FALSE((*all)[1].finish_reason);
  auto missing = tables_->execution("s1", 9);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

// ---- error paths -----------------------------------------------------------------------------

TEST_P(session_tables_test, a_second_active_execution_of_a_session_is_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_execution({"s1", 1, 100, std::nullopt, std::nullopt}));
  EXPECT_FALSE(tables_->insert_execution({"s1", 2, 200, std::nullopt, std::nullopt}));
  EXPECT_FALSE(tables_->insert_execution({"s1", 1, 300, std::nullopt, std::nullopt}))
      << "(session, generation) is the key";
  auto active = tables_->active_execution("s1");
  ASSERT_TRUE(active && *active);
  EXPECT_EQ((*active)->generation, 1);
}

TEST_P(session_tables_test, a_finish_reason_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_execution({"s1", 1, 100, std::nullopt, std::nullopt}));
  ASSERT_TRUE(tables_->finish_execution("s1", 1, 200, finish_reason::completed));
  write_behind_ordos_back("UPDATE executions SET finish_reason = 'bored'");
  EXPECT_TRUE(damaged(tables_->execution("s1", 1), "executions.finish_reason holds 'bored'"));
  EXPECT_TRUE(damaged(tables_->executions("s1"), "executions.finish_reason"));
}

}  // namespace
}  // namespace ordo::sqlite::tables_test
