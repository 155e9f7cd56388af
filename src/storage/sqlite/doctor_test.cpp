#include "storage/sqlite/doctor.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {
namespace {

namespace fs = std::filesystem;

// A migrated database file in a fresh directory, filled by raw SQL so each test can break
// exactly one invariant the server itself would never break.
class doctor_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ordo-doctor-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "ordo.db").string();
    auto db = connection::open(path_, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    db_ = std::move(*db);
    ASSERT_TRUE(migrate(db_));
    ASSERT_TRUE(load_or_create_database_epoch(db_));
    sql("INSERT INTO streams (id, path, content_type, incarnation, created_at_ms, "
        "last_access_ms) VALUES (1, 'chat', 'text/plain', 7, 0, 0), "
        "(2, '__ordo/changes', 'application/json', 8, 0, 0);"
        "INSERT INTO messages (stream_id, seq, data) VALUES (1, 1, 'a'), (1, 2, 'b'), (1, 3, 'c');"
        "UPDATE streams SET pruned_upto = 10 WHERE id = 2;"
        "INSERT INTO messages (stream_id, seq, data) VALUES (2, 11, '{}'), (2, 12, '{}');"
        "INSERT INTO projects (id, name, created_at_ms, updated_at_ms, next_session_number) "
        "VALUES ('web', 'Web', 0, 0, 2);"
        "INSERT INTO streams (id, path, content_type, incarnation, created_at_ms, "
        "last_access_ms) VALUES (3, '__sessions/web-1', 'application/json', 9, 0, 0);"
        "INSERT INTO sessions (id, project_id, number, state, created_at_ms, updated_at_ms, "
        "events_stream_id, next_row_seq, next_command_seq, next_generation) VALUES ('web-1', "
        "'web', 1, 'active', 0, 0, 3, 4, 2, 2);"
        "INSERT INTO rows (session_id, seq, row_id, kind, status, body, created_at_ms, "
        "updated_at_ms) VALUES ('web-1', 1, 'r1', 'user', 'complete', '{}', 0, 0), "
        "('web-1', 2, 'seq-2', 'assistant', 'complete', '{}', 0, 0), "
        "('web-1', 3, 'seq-3', 'assistant', 'complete', '{}', 0, 0);"
        "INSERT INTO commands (session_id, seq, request_id, body, status, created_at_ms, "
        "updated_at_ms) VALUES ('web-1', 1, 'k1', '{}', 'accepted', 0, 0);"
        "INSERT INTO executions (session_id, generation, started_at_ms) VALUES ('web-1', 1, 0);");
  }
  void TearDown() override {
    db_ = connection();
    fs::remove_all(dir_);
  }

  void sql(const std::string& text) {
    auto s = db_.exec(text);
    ASSERT_TRUE(s) << s.error().message;
  }
  std::vector<finding> diagnosis() {
    auto f = diagnose(db_);
    EXPECT_TRUE(f) << f.error().message;
    return f ? *f : std::vector<finding>{};
  }
  std::vector<std::string> column(const std::string& query) {
    std::vector<std::string> out;
    auto st = db_.prepare(query);
    EXPECT_TRUE(st);
    while (*st->step())
      out.emplace_back(st->column_text(0));
    return out;
  }
  std::string epoch() {
    return **db_.query_text("SELECT value FROM meta WHERE key = 'database_epoch'");
  }

  fs::path dir_;
  std::string path_;
  connection db_;
};

bool has(const std::vector<finding>& fs, std::string_view check, std::string_view subject) {
  return std::any_of(fs.begin(), fs.end(),
                     [&](const finding& f) { return f.check == check && f.subject == subject; });
}

TEST_F(doctor_test, a_healthy_database_has_no_findings_including_a_pruned_change_feed) {
  EXPECT_TRUE(diagnosis().empty());
}

TEST_F(doctor_test, a_gap_in_a_stream_is_found_and_renumbered_in_order_with_a_new_epoch) {
  sql("DELETE FROM messages WHERE stream_id = 1 AND seq = 2");
  auto found = diagnosis();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].check, "stream_offsets");
  EXPECT_EQ(found[0].subject, "chat");
  EXPECT_TRUE(found[0].repairable);
  const std::string before = epoch();
  auto r = repair(db_);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->findings.empty());
  EXPECT_TRUE(r->epoch_renewed);
  EXPECT_NE(epoch(), before);
  EXPECT_EQ(column("SELECT seq || data FROM messages WHERE stream_id = 1 ORDER BY seq"),
            (std::vector<std::string>{"1a", "2c"}));
}

TEST_F(doctor_test, messages_still_in_the_append_log_count_and_are_moved_by_a_repair) {
  sql("INSERT INTO recent_messages (stream_id, seq, data) VALUES (1, 4, 'd'), (1, 5, 'e')");
  EXPECT_TRUE(diagnosis().empty());  // dense across both tables
  sql("INSERT INTO recent_messages (stream_id, seq, data) VALUES (1, 7, 'g')");
  auto found = diagnosis();
  ASSERT_TRUE(has(found, "stream_offsets", "chat"));
  auto r = repair(db_);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(column("SELECT seq || data FROM messages WHERE stream_id = 1 ORDER BY seq"),
            (std::vector<std::string>{"1a", "2b", "3c", "4d", "5e", "6g"}));
  EXPECT_EQ(column("SELECT COUNT(*) FROM recent_messages"), (std::vector<std::string>{"0"}));
}

TEST_F(doctor_test, an_append_log_below_the_stream_table_is_found_and_moved_in_order) {
  // Positions 1..4 are dense, but a read would give 1, 2, 4 from the table, then 3 from the log.
  sql("DELETE FROM messages WHERE stream_id = 1 AND seq = 3;"
      "INSERT INTO messages (stream_id, seq, data) VALUES (1, 4, 'd');"
      "INSERT INTO recent_messages (stream_id, seq, data) VALUES (1, 3, 'c')");
  auto found = diagnosis();
  ASSERT_TRUE(has(found, "append_log_order", "chat"));
  auto r = repair(db_);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(column("SELECT seq || data FROM messages WHERE stream_id = 1 ORDER BY seq"),
            (std::vector<std::string>{"1a", "2b", "3c", "4d"}));
}

TEST_F(doctor_test, a_gap_in_the_change_feed_after_its_pruning_point_is_found_and_closed) {
  sql("INSERT INTO messages (stream_id, seq, data) VALUES (2, 15, '{}')");  // 11, 12, 15
  auto found = diagnosis();
  ASSERT_TRUE(has(found, "stream_offsets", "__ordo/changes"));
  EXPECT_NE(found[0].message.find("change feed"), std::string::npos) << found[0].message;
  auto r = repair(db_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(column("SELECT seq FROM messages WHERE stream_id = 2 ORDER BY seq"),
            (std::vector<std::string>{"11", "12", "13"}));
}

TEST_F(doctor_test, session_rows_and_commands_out_of_line_are_renumbered_and_counters_raised) {
  sql("DELETE FROM rows WHERE seq = 2;"
      "UPDATE commands SET seq = 5 WHERE seq = 1;"
      "UPDATE sessions SET next_generation = 1;"
      "UPDATE projects SET next_session_number = 1;");
  auto found = diagnosis();
  EXPECT_TRUE(has(found, "session_rows", "web-1"));
  EXPECT_TRUE(has(found, "session_commands", "web-1"));
  EXPECT_TRUE(has(found, "executions", "web-1"));
  EXPECT_TRUE(has(found, "project_sessions", "web"));
  auto r = repair(db_);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->findings.empty());
  EXPECT_FALSE(r->epoch_renewed);  // no stream position moved
  EXPECT_EQ(column("SELECT seq || row_id FROM rows ORDER BY seq"),
            (std::vector<std::string>{"1r1", "2seq-2"}));  // generated ids follow
  EXPECT_EQ(column("SELECT next_row_seq || ',' || next_command_seq || ',' || next_generation "
                   "FROM sessions"),
            (std::vector<std::string>{"3,2,2"}));
  EXPECT_EQ(column("SELECT next_session_number FROM projects"), (std::vector<std::string>{"2"}));
}

TEST_F(doctor_test, a_generated_row_id_that_names_another_sequence_is_renamed) {
  sql("UPDATE rows SET row_id = 'seq-9' WHERE seq = 2");
  auto found = diagnosis();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].check, "session_row_ids");
  auto r = repair(db_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(column("SELECT row_id FROM rows ORDER BY seq"),
            (std::vector<std::string>{"r1", "seq-2", "seq-3"}));
}

TEST_F(doctor_test, a_counter_behind_its_rows_is_found_even_when_the_rows_are_dense) {
  sql("UPDATE sessions SET next_row_seq = 2");
  auto found = diagnosis();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].check, "session_rows");
  ASSERT_TRUE(repair(db_));
  EXPECT_EQ(column("SELECT next_row_seq FROM sessions"), (std::vector<std::string>{"4"}));
}

TEST_F(doctor_test, orphan_messages_and_producers_are_removed) {
  sql("INSERT INTO messages (stream_id, seq, data) VALUES (99, 1, 'x');"
      "INSERT INTO recent_messages (stream_id, seq, data) VALUES (98, 1, 'y');"
      "INSERT INTO producers VALUES (99, 'p', 0, 1, 0);"
      "UPDATE streams SET closed_by_producer = 'p', closed_by_epoch = 0, closed_by_seq = 1 "
      "WHERE id = 1;");
  auto found = diagnosis();
  EXPECT_TRUE(has(found, "orphan_messages", "stream id 99"));
  EXPECT_TRUE(has(found, "orphan_messages", "stream id 98"));  // in the append log
  EXPECT_TRUE(has(found, "producers", "stream id 99"));
  EXPECT_TRUE(has(found, "producers", "chat"));
  auto r = repair(db_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->findings.empty());
  EXPECT_EQ(column("SELECT COUNT(*) FROM messages WHERE stream_id IN (98, 99)"),
            (std::vector<std::string>{"0"}));
  EXPECT_EQ(column("SELECT COUNT(*) FROM recent_messages"), (std::vector<std::string>{"0"}));
}

TEST_F(doctor_test, a_dangling_foreign_key_is_found_and_not_repairable) {
  sql("PRAGMA foreign_keys=OFF; INSERT INTO executions (session_id, generation, started_at_ms) "
      "VALUES ('ghost', 1, 0);");
  auto found = diagnosis();
  ASSERT_TRUE(has(found, "foreign_keys", "executions"));
  auto r = repair(db_);
  ASSERT_TRUE(r);
  EXPECT_TRUE(has(r->findings, "foreign_keys", "executions"));  // still there
}

TEST_F(doctor_test, a_changed_schema_is_reported_without_running_the_invariant_queries) {
  sql("DROP TABLE pr_comments");
  auto found = diagnosis();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].check, "schema");
  EXPECT_NE(found[0].message.find("pr_comments"), std::string::npos);
}

TEST_F(doctor_test, repair_is_refused_while_another_connection_has_the_database_open) {
  // db_ stays open in WAL mode and has read, like a running server.
  sql("PRAGMA journal_mode=WAL; SELECT COUNT(*) FROM streams;");
  auto r = open_for_repair(path_);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "database_in_use");
  db_ = connection();
  auto alone = open_for_repair(path_);
  EXPECT_TRUE(alone) << alone.error().message;
}

}  // namespace
}  // namespace ordo::sqlite
