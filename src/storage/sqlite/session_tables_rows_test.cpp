// session_tables' transcript rows against a real SQLite file: they round-trip by id and by
// request, and page after, before and newest first. Error paths: a reused request id and a
// sequence of 0 are refused, and an unknown stored kind or status reads as a damaged database.
#include "storage/sqlite/session_tables_test_fixture.hpp"

namespace ordo::sqlite::tables_test {
namespace {

TEST_P(session_tables_test, rows_round_trip_by_id_and_by_request) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  transcript_row ask = row("s1", 1, row_kind::approval_request, row_status::pending);
  ask.request_id = "approve-1";
  ask.request_body = R"({"tool":"rm"})";
  ASSERT_TRUE(tables_->insert_row(ask));
  auto read = tables_->row_by_request("s1", "approve-1");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->row_id, "row-1");
  EXPECT_EQ((*read)->request_body, R"({"tool":"rm"})");

  ask.status = row_status::denied;
  ask.body = R"({"text":"no"})";
  ask.revision = 2;
  ask.updated_at_ms = 9999;
  ASSERT_TRUE(tables_->update_row(ask));
  read = tables_->row_by_id("s1", "row-1");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->status, row_status::denied);
  EXPECT_EQ((*read)->body, R"({"text":"no"})");
  EXPECT_EQ((*read)->revision, 2);
  EXPECT_EQ((*read)->updated_at_ms, 9999);
  EXPECT_EQ((*read)->created_at_ms, 4001);

  auto missing = tables_->row_by_id("s1", "row-9");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  missing = tables_->row_by_request("s1", "nope");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_P(session_tables_test, rows_page_after_before_and_newest_first) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
  for (std::int64_t seq = 1; seq <= 6; ++seq)
    ASSERT_TRUE(tables_->insert_row(row("s1", seq)));
  ASSERT_TRUE(tables_->insert_row(row("s2", 1)));  // another session's row is never listed

  row_page_query q;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
  q.limit = 2;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{1, 2}));
  q.after = 2;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{3, 4}));
  q.before = 4;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{3}));
  row_page_query latest;
  latest.limit = 2;
  latest.newest_first = true;
  EXPECT_EQ(row_seqs(latest), (std::vector<std::int64_t>{6, 5}));
  latest.before = 5;
  EXPECT_EQ(row_seqs(latest), (std::vector<std::int64_t>{4, 3}));
}

// ---- error paths -----------------------------------------------------------------------------

TEST_P(session_tables_test, a_reused_request_id_and_sequence_0_are_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  transcript_row r = row("s1", 1);
  r.request_id = "approve-1";
  ASSERT_TRUE(tables_->insert_row(r));
  transcript_row same = row("s1", 2);
  same.request_id = "approve-1";
  EXPECT_FALSE(tables_->insert_row(same)) << "a request id names one row";
  EXPECT_FALSE(tables_->insert_row(row("s1", 0))) << "row seq starts at 1";
}

TEST_P(session_tables_test, a_kind_or_status_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_row(row("s1", 1)));
  ASSERT_TRUE(tables_->insert_row(row("s1", 2)));
  write_behind_ordos_back("UPDATE rows SET kind = 'poem' WHERE seq = 1");
  write_behind_ordos_back("UPDATE rows SET status = 'pondering' WHERE seq = 2");
  EXPECT_TRUE(damaged(tables_->row_by_id("s1", "row-1"), "rows.kind holds 'poem'"));
  EXPECT_TRUE(damaged(tables_->row_by_id("s1", "row-2"), "rows.status holds 'pondering'"));
  row_page_query all;
  EXPECT_TRUE(damaged(tables_->rows("s1", all), "rows.kind"));
}

}  // namespace
}  // namespace ordo::sqlite::tables_test
