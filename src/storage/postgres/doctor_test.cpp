#include "storage/postgres/doctor.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include "storage/postgres/migrations.hpp"
#include "storage/postgres/scratch_cluster.hpp"
#include "storage/postgres/stream_tables.hpp"

namespace ordo::postgres {
namespace {

class PostgresDoctorTest : public testing::migrated_postgres_test {
 protected:
  // A migrated database with one stream of five appends, a project and a session with two rows.
  void SetUp() override {
    testing::migrated_postgres_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto db = connect();
    ASSERT_TRUE(db) << db.error().message;
    stream_tables t(*db);
    stream_row row;
    row.path = "s";
    row.content_type = "text/plain";
    row.incarnation = 1;
    auto id = t.insert_stream(row);
    ASSERT_TRUE(id);
    stream_ = *id;
    ASSERT_TRUE(t.begin());
    auto tails = t.lock_tails({stream_});
    ASSERT_TRUE(tails);
    ASSERT_TRUE(t.append(stream_, tails->front().second,
                         std::vector<std::string_view>{"1", "2", "3", "4", "5"}));
    ASSERT_TRUE(t.commit());
    ASSERT_TRUE(db->exec(
        "INSERT INTO projects (id, name, created_at_ms, updated_at_ms, next_session_number) "
        "VALUES ('p', 'P', 0, 0, 2);"
        "INSERT INTO sessions (id, project_id, number, state, created_at_ms, updated_at_ms, "
        "events_stream_id, next_row_seq) SELECT 'p-1', 'p', 1, 'active', 0, 0, id, 3 FROM "
        "streams;"
        "INSERT INTO rows (session_id, seq, row_id, kind, status, body, created_at_ms, "
        "updated_at_ms) VALUES ('p-1', 1, 'seq-1', 'user', 'complete', '{}', 0, 0), "
        "('p-1', 2, 'mine', 'assistant', 'complete', '{}', 0, 0)"));
  }

  std::vector<finding> diagnosis() {
    auto ro = connect({.read_only = true});
    EXPECT_TRUE(ro) << ro.error().message;
    if (!ro) return {};
    auto found = diagnose(*ro);
    EXPECT_TRUE(found) << found.error().message;
    return found ? *found : std::vector<finding>{};
  }

  // Runs `sql` as the owner (the doctor only reads).
  void damage(const std::string& sql) {
    auto db = connect();
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db->exec(sql)) << sql;
  }

  stream_id stream_;
};

TEST_F(PostgresDoctorTest, AHealthyDatabaseHasNoFinding) {
  EXPECT_TRUE(diagnosis().empty());
}

TEST_F(PostgresDoctorTest, NamesEveryBrokenInvariant) {
  damage(
      "DELETE FROM messages WHERE seq = 3;"  // a gap
      "INSERT INTO streams (path, content_type, incarnation, created_at_ms, last_access_ms, "
      "  tail_seq) VALUES ('ahead', 'text/plain', 1, 0, 0, 4);"        // a counter past its data
      "INSERT INTO messages VALUES (999, 1, 'x');"                     // no such stream
      "INSERT INTO producers VALUES (999, 'ghost', 0, 0, 0);"          // no such stream
      "UPDATE streams SET closed_by_producer = 'p' WHERE path = 's';"  // closing, yet open
      "UPDATE rows SET seq = 7, row_id = 'seq-1' WHERE row_id = 'seq-1';"  // 2, 7 and misnamed
      "UPDATE projects SET next_session_number = 1;"                       // would reuse 1
      "INSERT INTO executions VALUES ('p-1', 4, 0, 0, 'completed');");     // generation 4, next 1
  std::vector<std::string> checks;
  for (const finding& f : diagnosis())
    checks.push_back(f.check + " " + f.subject);
  std::sort(checks.begin(), checks.end());
  EXPECT_EQ(checks, (std::vector<std::string>{
                        "executions p-1",
                        "orphan_messages stream id 999",
                        "producers s",
                        "producers stream id 999",
                        "project_sessions p",
                        "session_row_ids p-1",
                        "session_rows p-1",
                        "stream_counter ahead",
                        "stream_offsets s",
                    }));
}

TEST_F(PostgresDoctorTest, ACounterBehindItsDataWouldReuseAPosition) {
  damage("UPDATE streams SET tail_seq = 4 WHERE path = 's'");
  auto found = diagnosis();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].check, "stream_counter");
  EXPECT_NE(found[0].message.find("counter is at 4 and its last position is 5"), std::string::npos)
      << found[0].message;
  EXPECT_NE(found[0].message.find("reuse a position"), std::string::npos) << found[0].message;
}

TEST_F(PostgresDoctorTest, ASchemaChangedOutsideOrdoIsTheOneFinding) {
  damage("ALTER TABLE rows DROP COLUMN request_body");
  auto found = diagnosis();
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].check, "schema");
  EXPECT_NE(found[0].message.find("column rows.request_body is missing"), std::string::npos);
}

TEST_F(PostgresDoctorTest, ADatabaseOrdoNeverMigratedSaysSo) {
  // A database of its own that nothing migrated.
  const std::string name = database_ + "_empty";
  auto admin = connection::open(cluster_->url());
  ASSERT_TRUE(admin);
  ASSERT_TRUE(admin->exec("CREATE DATABASE " + name));
  auto empty = connection::open(cluster_->url(name), {.read_only = true});
  ASSERT_TRUE(empty) << empty.error().message;
  auto found = diagnose(*empty);
  ASSERT_TRUE(found) << found.error().message;
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].check, "schema");
  EXPECT_NE((*found)[0].message.find("run ordo migrate"), std::string::npos);
}

}  // namespace
}  // namespace ordo::postgres
