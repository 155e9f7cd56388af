#include "storage/postgres/migrations.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "storage/postgres/scratch_cluster.hpp"

namespace ordo::postgres {
namespace {

using PostgresMigrationsTest = testing::postgres_test;

TEST_F(PostgresMigrationsTest, MigratesAnEmptyDatabaseOnceAndVerifiesIt) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  auto version = current_schema_version(*db);
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(*version, 0);
  auto pending = pending_migrations(*db);
  ASSERT_TRUE(pending) << pending.error().message;
  EXPECT_EQ(pending->size(), all_migrations().size());

  auto applied = migrate(*db);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ(*applied, static_cast<int>(all_migrations().size()));
  version = current_schema_version(*db);
  ASSERT_TRUE(version);
  EXPECT_EQ(*version, latest_schema_version());
  pending = pending_migrations(*db);
  ASSERT_TRUE(pending);
  EXPECT_TRUE(pending->empty());

  applied = migrate(*db);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ(*applied, 0);
  EXPECT_TRUE(verify_schema(*db));
  // The probe leaves nothing behind.
  auto probes =
      db->query_int64("SELECT count(*) FROM pg_namespace WHERE nspname = 'ordo_schema_probe'");
  ASSERT_TRUE(probes);
  EXPECT_EQ(*probes, 0);
}

TEST_F(PostgresMigrationsTest, TheProbesDescriptionIsWhatTheMigrationsMake) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(apply_migrations(*db, all_migrations()));
  auto actual = describe_schema(*db);
  ASSERT_TRUE(actual) << actual.error().message;
  EXPECT_EQ(*actual, latest_schema_description())
      << "a migration changed the schema: replace k_latest_schema in migrations.cpp with\n"
      << *actual;
}

TEST_F(PostgresMigrationsTest, TheProbeOnlyReads) {
  {
    auto db = connect();
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(migrate(*db));
    ASSERT_TRUE(db->exec("ALTER TABLE sessions DROP COLUMN title"));
  }
  auto ro = connect({.read_only = true});
  ASSERT_TRUE(ro) << ro.error().message;
  auto s = verify_schema(*ro);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "schema_mismatch");
  EXPECT_NE(s.error().message.find("column sessions.title is missing"), std::string::npos)
      << s.error().message;
}

TEST_F(PostgresMigrationsTest, TheSchemaKeepsItsInvariants) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(migrate(*db));
  // A stream's counter never falls below its fork point; a purging stream has no path.
  ASSERT_TRUE(db->query(
      "INSERT INTO streams (path, content_type, incarnation, created_at_ms, last_access_ms) "
      "VALUES ('a', 'text/plain', 1, 0, 0)"));
  auto below = db->query("UPDATE streams SET base_seq = 5, tail_seq = 4 WHERE path = 'a'");
  ASSERT_FALSE(below);
  EXPECT_EQ(below.error().code, k_storage_constraint);
  auto purging_with_path = db->query("UPDATE streams SET state = 2 WHERE path = 'a'");
  ASSERT_FALSE(purging_with_path);
  EXPECT_EQ(purging_with_path.error().code, k_storage_constraint);
  // A session refers to a project and a stream that exist.
  auto orphan = db->query(
      "INSERT INTO sessions (id, project_id, number, state, created_at_ms, updated_at_ms, "
      "events_stream_id) VALUES ('p-1', 'p', 1, 'created', 0, 0, 1)");
  ASSERT_FALSE(orphan);
  EXPECT_EQ(orphan.error().code, k_storage_constraint);
  // At most one unfinished execution per session.
  ASSERT_TRUE(db->exec(
      "INSERT INTO projects (id, name, created_at_ms, updated_at_ms) VALUES ('p', 'P', 0, 0);"
      "INSERT INTO sessions (id, project_id, number, state, created_at_ms, updated_at_ms, "
      "events_stream_id) SELECT 'p-1', 'p', 1, 'created', 0, 0, id FROM streams;"
      "INSERT INTO executions (session_id, generation, started_at_ms) VALUES ('p-1', 1, 0)"));
  auto second = db->query(
      "INSERT INTO executions (session_id, generation, started_at_ms) VALUES ('p-1', 2, 0)");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, k_storage_constraint);
}

TEST_F(PostgresMigrationsTest, ADatabaseFromANewerOrdoIsRefused) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(migrate(*db));
  ASSERT_TRUE(db->query(
      "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES ($1, 'future', 0)",
      {std::to_string(latest_schema_version() + 1)}));
  auto applied = migrate(*db);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, "schema_too_new");
  auto pending = pending_migrations(*db);
  ASSERT_FALSE(pending);
  EXPECT_EQ(pending.error().code, "schema_too_new");
}

TEST_F(PostgresMigrationsTest, TheProbeNamesEveryChangeMadeOutsideOrdo) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  ASSERT_TRUE(migrate(*db));
  ASSERT_TRUE(
      db->exec("ALTER TABLE sessions DROP COLUMN title;"
               "ALTER TABLE messages ALTER COLUMN seq TYPE INTEGER;"
               "ALTER TABLE rows ALTER COLUMN body DROP NOT NULL;"
               "DROP INDEX prs_by_session;"
               "DROP TABLE pr_comments;"
               // Extra objects are allowed.
               "CREATE TABLE operator_notes (note TEXT);"
               "CREATE INDEX sessions_by_title ON sessions(model)"));
  auto s = verify_schema(*db);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "schema_mismatch");
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("column sessions.title is missing"), std::string::npos) << m;
  EXPECT_NE(m.find("column messages.seq is 'integer NOT NULL', expected 'bigint NOT NULL'"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("column rows.body is 'text', expected 'text NOT NULL'"), std::string::npos) << m;
  EXPECT_NE(m.find("index prs_by_session is missing"), std::string::npos) << m;
  EXPECT_NE(m.find("table pr_comments is missing"), std::string::npos) << m;
  EXPECT_EQ(m.find("operator_notes"), std::string::npos) << m;
  EXPECT_EQ(m.find("sessions_by_title"), std::string::npos) << m;
  // migrate() runs the probe after migrating, so a server refuses to start on it.
  auto applied = migrate(*db);
  ASSERT_FALSE(applied);
  EXPECT_EQ(applied.error().code, "schema_mismatch");
}

TEST_F(PostgresMigrationsTest, AFailingMigrationLeavesNothingBehind) {
  auto db = connect();
  ASSERT_TRUE(db) << db.error().message;
  const migration broken[] = {
      all_migrations()[0],
      {all_migrations().back().version + 1, "broken", "CREATE TABLE half (x INT); SELECT 1 / 0"},
  };
  auto applied = apply_migrations(*db, broken);
  ASSERT_FALSE(applied);
  EXPECT_NE(applied.error().message.find("(broken) failed"), std::string::npos)
      << applied.error().message;
  // One transaction: not even the migration before it, nor the table of migrations, is kept.
  auto version = current_schema_version(*db);
  ASSERT_TRUE(version) << version.error().message;
  EXPECT_EQ(*version, 0);
  auto tables =
      db->query_int64("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()");
  ASSERT_TRUE(tables);
  EXPECT_EQ(*tables, 0);
}

TEST_F(PostgresMigrationsTest, NodesMigratingAtOnceMigrateOnce) {
  constexpr int k_nodes = 4;
  std::vector<result<int>> outcomes(k_nodes, result<int>(0));
  std::vector<std::thread> nodes;
  for (int i = 0; i < k_nodes; ++i) {
    nodes.emplace_back([&, i] {
      auto db = connection::open(url());
      if (!db) {
        outcomes[i] = std::move(db).error();
        return;
      }
      outcomes[i] = migrate(*db);
    });
  }
  for (auto& t : nodes)
    t.join();
  int applied = 0;
  for (auto& o : outcomes) {
    ASSERT_TRUE(o) << o.error().message;
    applied += *o;
  }
  EXPECT_EQ(applied, static_cast<int>(all_migrations().size()));
  auto db = connect();
  ASSERT_TRUE(db);
  auto rows = db->query_int64("SELECT count(*) FROM schema_migrations");
  ASSERT_TRUE(rows);
  EXPECT_EQ(*rows, static_cast<std::int64_t>(all_migrations().size()));
}

}  // namespace
}  // namespace ordo::postgres
