// session_tables' commands against a real SQLite file: they round-trip, page, and list the
// pending ones apart. Error paths: a reused request id is refused, and an unknown stored status
// reads as a damaged database.
#include "storage/sqlite/session_tables_test_fixture.hpp"

namespace ordo::sqlite::tables_test {
namespace {

TEST_P(session_tables_test, commands_round_trip_and_page_with_the_pending_ones_apart) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  for (std::int64_t seq = 1; seq <= 4; ++seq)
    ASSERT_TRUE(tables_->insert_command(command("s1", seq)));
  auto c = tables_->command("s1", 2);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->request_id, "req-2");
  EXPECT_EQ((*c)->body, R"({"type":"prompt"})");
  EXPECT_EQ((*c)->status, command_status::accepted);
  EXPECT_FALSE((*c)->result);
  auto by_request = tables_->command_by_request("s1", "req-3");
  ASSERT_TRUE(by_request && *by_request);
  EXPECT_EQ((*by_request)->seq, 3);

  ASSERT_TRUE(
      tables_->update_command_status("s1", 1, command_status::done, R"({"ok":true})", 8000));
  ASSERT_TRUE(tables_->update_command_status("s1", 1, command_status::done, std::nullopt, 8100));
  c = tables_->command("s1", 1);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, command_status::done);
  EXPECT_EQ((*c)->result, R"({"ok":true})") << "a status change without a result keeps it";
  EXPECT_EQ((*c)->updated_at_ms, 8100);
  ASSERT_TRUE(
      tables_->update_command_status("s1", 3, command_status::delivered, std::nullopt, 8200));

  auto pending = tables_->pending_commands("s1");
  ASSERT_TRUE(pending);
  std::vector<std::int64_t> seqs;
  for (const auto& p : *pending)
    seqs.push_back(p.seq);
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{2, 3, 4}));

  auto page = tables_->commands("s1", 1, 2);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 2);
  EXPECT_EQ((*page)[1].seq, 3);
  ASSERT_TRUE(tables_->update_command_status("s1", 2, command_status::failed, std::nullopt, 8300));
  auto pending_page = tables_->commands("s1", 0, 10, true);
  ASSERT_TRUE(pending_page);
  ASSERT_EQ(pending_page->size(), 2u);
  EXPECT_EQ((*pending_page)[0].seq, 3);
  EXPECT_EQ((*pending_page)[1].seq, 4);
}

// ---- error paths -----------------------------------------------------------------------------

TEST_P(session_tables_test, a_reused_request_id_is_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 1)));
  command_row same_request = command("s1", 2);
  same_request.request_id = "req-1";
  EXPECT_FALSE(tables_->insert_command(same_request));
  auto c = tables_->command("s1", 1);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, command_status::accepted);
}

TEST_P(session_tables_test, a_status_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 1)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 2)));
  write_behind_ordos_back("UPDATE commands SET status = 'lost' WHERE seq = 2");
  EXPECT_TRUE(damaged(tables_->command("s1", 2), "commands.status holds 'lost'"));
  EXPECT_TRUE(damaged(tables_->commands("s1", 0, 10), "commands.status"));
  EXPECT_TRUE(damaged(tables_->commands_by_status(), "commands.status"));
  EXPECT_TRUE(tables_->command("s1", 1)) << "the other commands still read";
}

}  // namespace
}  // namespace ordo::sqlite::tables_test
