// The session tables' enums against their one mapping and the schema: every value round-trips
// through its text, the texts are exactly what the column's CHECK constraint allows (in the same
// order), and a text naming no value is a damaged database, named with the column and the values
// it may hold.
#include "storage/sqlite/session_enums.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <string>
#include <vector>

#include "storage/sqlite/migrations.hpp"

namespace ordo::sqlite {
namespace {

// The quoted texts of `column`'s "column IN (...)" CHECK constraint in `table`'s schema.
std::vector<std::string> allowed_by_schema(std::string_view table, std::string_view column) {
  auto db = connection::open(":memory:", open_mode::read_write_create, std::chrono::seconds(1));
  EXPECT_TRUE(db);
  if (!db) return {};
  EXPECT_TRUE(migrate(*db));
  auto sql = db->query_text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = '" +
                            std::string(table) + "'");
  EXPECT_TRUE(sql && *sql) << table;
  if (!sql || !*sql) return {};
  std::smatch check;
  const std::string& text = **sql;
  EXPECT_TRUE(
      std::regex_search(text, check, std::regex("\\b" + std::string(column) + " IN \\(([^)]*)\\)")))
      << table << "." << column;
  std::vector<std::string> names;
  std::string list = check[1];
  std::regex quoted("'([^']*)'");
  for (auto it = std::sregex_iterator(list.begin(), list.end(), quoted);
       it != std::sregex_iterator(); ++it) {
    names.push_back((*it)[1]);
  }
  return names;
}

template <named_enum E>
std::vector<std::string> names_of() {
  std::vector<std::string> names;
  for (E value : enum_values<E>())
    names.emplace_back(to_string(value));
  return names;
}

template <named_enum E>
void expect_one_mapping(std::string_view column) {
  std::set<std::string> distinct;
  for (E value : enum_values<E>()) {
    std::string_view text = to_string(value);
    EXPECT_FALSE(text.empty()) << column;
    EXPECT_TRUE(distinct.insert(std::string(text)).second) << column << ": '" << text << "' twice";
    auto parsed = parse_enum<E>(text);
    ASSERT_TRUE(parsed) << column << ": " << text;
    EXPECT_EQ(*parsed, value) << column << ": " << text;
    auto stored = stored_enum<E>(column, text);
    ASSERT_TRUE(stored) << column << ": " << text;
    EXPECT_EQ(*stored, value) << column << ": " << text;
  }
}

template <named_enum E>
void expect_the_schemas(std::string_view table, std::string_view column) {
  EXPECT_EQ(names_of<E>(), allowed_by_schema(table, column)) << table << "." << column;
}

TEST(session_enums, every_value_round_trips_through_its_one_text) {
  expect_one_mapping<session_state>("sessions.state");
  expect_one_mapping<end_reason>("sessions.end_reason");
  expect_one_mapping<client_state>("client_state");
  expect_one_mapping<finish_reason>("executions.finish_reason");
  expect_one_mapping<command_status>("commands.status");
  expect_one_mapping<row_kind>("rows.kind");
  expect_one_mapping<row_status>("rows.status");
  expect_one_mapping<pr_state>("prs.state");
  expect_one_mapping<review_decision>("prs.review_decision");
  expect_one_mapping<mergeability>("prs.mergeability");
  expect_one_mapping<ci_state>("prs.ci_state");
  expect_one_mapping<check_status>("pr_checks.status");
}

TEST(session_enums, the_texts_are_exactly_what_each_columns_check_constraint_allows) {
  expect_the_schemas<session_state>("sessions", "state");
  expect_the_schemas<end_reason>("sessions", "end_reason");
  expect_the_schemas<finish_reason>("executions", "finish_reason");
  expect_the_schemas<command_status>("commands", "status");
  expect_the_schemas<row_kind>("rows", "kind");
  expect_the_schemas<row_status>("rows", "status");
  expect_the_schemas<pr_state>("prs", "state");
  expect_the_schemas<review_decision>("prs", "review_decision");
  expect_the_schemas<mergeability>("prs", "mergeability");
  expect_the_schemas<ci_state>("prs", "ci_state");
  expect_the_schemas<check_status>("pr_checks", "status");
}

TEST(session_enums, the_texts_are_those_the_api_has_always_shown) {
  EXPECT_EQ(joined_names<session_state>(),
            "created, starting, active, suspended, detached, closing, ended");
  EXPECT_EQ(joined_names<end_reason>(), "completed, killed, failed, pr_merged, reaped, cancelled");
  EXPECT_EQ(joined_names<client_state>(), "idle, running, requires_action");
  EXPECT_EQ(joined_names<finish_reason>(), "completed, failed, aborted, lost, session_ended");
  EXPECT_EQ(joined_names<command_status>(), "accepted, delivered, done, failed, interrupted");
  EXPECT_EQ(joined_names<row_kind>(),
            "user, assistant, tool_call, tool_result, approval_request, approval_response, system");
  EXPECT_EQ(joined_names<row_status>(),
            "pending, in_progress, complete, failed, approved, denied, cancelled");
  EXPECT_EQ(joined_names<pr_state>(), "open, merged, closed");
  EXPECT_EQ(joined_names<review_decision>(), "approved, changes_requested, review_required, none");
  EXPECT_EQ(joined_names<mergeability>(), "mergeable, conflicting, unknown");
  EXPECT_EQ(joined_names<ci_state>(), "pending, passing, failing, none");
  EXPECT_EQ(joined_names<check_status>(),
            "queued, in_progress, success, failure, cancelled, skipped, neutral, timed_out");
}

// ---- error paths -----------------------------------------------------------------------------

TEST(session_enums, an_unknown_stored_text_is_a_damaged_database_naming_column_and_values) {
  auto state = stored_enum<session_state>("sessions.state", "dreaming");
  ASSERT_FALSE(state);
  EXPECT_EQ(state.error().kind, failure_kind::internal);
  EXPECT_EQ(state.error().code, k_storage_corrupt);
  EXPECT_EQ(state.error().message,
            "sessions.state holds 'dreaming', which is not one of created, starting, active, "
            "suspended, detached, closing, ended (the database was changed outside ordo)");
  EXPECT_FALSE(stored_enum<end_reason>("sessions.end_reason", "done"));
  EXPECT_FALSE(stored_enum<client_state>("client_state", ""));
  EXPECT_FALSE(stored_enum<finish_reason>("executions.finish_reason", "bored"));
  EXPECT_FALSE(stored_enum<command_status>("commands.status", "pending"));
  EXPECT_FALSE(stored_enum<row_kind>("rows.kind", "poem"));
  EXPECT_FALSE(stored_enum<row_status>("rows.status", "done"));
  EXPECT_FALSE(stored_enum<pr_state>("prs.state", "draft"));
  EXPECT_FALSE(stored_enum<review_decision>("prs.review_decision", "meh"));
  EXPECT_FALSE(stored_enum<mergeability>("prs.mergeability", "maybe"));
  EXPECT_FALSE(stored_enum<ci_state>("prs.ci_state", "green"));
  EXPECT_FALSE(stored_enum<check_status>("pr_checks.status", "flaky"));
}

TEST(session_enums, texts_are_compared_exactly) {
  EXPECT_FALSE(parse_enum<session_state>("ACTIVE"));
  EXPECT_FALSE(parse_enum<session_state>("active "));
  EXPECT_FALSE(parse_enum<end_reason>("pr-merged"));
}

}  // namespace
}  // namespace ordo::sqlite
