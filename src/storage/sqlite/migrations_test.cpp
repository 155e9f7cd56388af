#include "storage/sqlite/migrations.hpp"

#include <gtest/gtest.h>

#include <set>

namespace ordo::sqlite {
namespace {

connection memory_db() {
  auto db = connection::open(":memory:", open_mode::read_write_create, std::chrono::seconds(1));
  EXPECT_TRUE(db);
  return std::move(*db);
}

TEST(migrations, versions_are_unique_and_ascending) {
  std::set<std::int64_t> seen;
  std::int64_t previous = 0;
  for (const migration& m : all_migrations()) {
    EXPECT_TRUE(seen.insert(m.version).second) << "two migrations share version " << m.version;
    EXPECT_GT(m.version, previous) << "migrations must be listed in ascending order";
    EXPECT_FALSE(m.name.empty());
    previous = m.version;
  }
  EXPECT_EQ(previous, latest_schema_version());
}

TEST(migrations, a_new_database_is_brought_to_the_latest_version) {
  connection db = memory_db();
  auto applied = migrate(db);
  ASSERT_TRUE(applied) << applied.error().message;
  EXPECT_EQ(*applied, static_cast<int>(all_migrations().size()));
  EXPECT_EQ(*current_schema_version(db), latest_schema_version());
  for (const char* table : {"meta", "streams", "messages", "producers"}) {
    auto n = db.query_int64(std::string("SELECT COUNT(*) FROM sqlite_master WHERE name = '") +
                            table + "'");
    EXPECT_EQ(n->value_or(0), 1) << table;
  }
}

TEST(migrations, migrating_twice_applies_nothing_the_second_time) {
  connection db = memory_db();
  ASSERT_TRUE(migrate(db));
  auto again = migrate(db);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0);
}

// ---- error paths -----------------------------------------------------------------------------

TEST(migrations, a_database_written_by_a_newer_ordo_is_refused_with_a_clear_message) {
  connection db = memory_db();
  ASSERT_TRUE(migrate(db));
  ASSERT_TRUE(db.exec("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (" +
                      std::to_string(latest_schema_version() + 1) + ", 'from the future', 0)"));
  auto r = migrate(db);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "schema_too_new");
  EXPECT_NE(r.error().message.find("newer ordo"), std::string::npos);
}

TEST(migrations, a_failing_migration_leaves_the_database_unchanged) {
  connection db = memory_db();
  // A table the first migration wants to create already exists: the migration fails whole.
  ASSERT_TRUE(db.exec("CREATE TABLE streams (x INTEGER)"));
  auto r = migrate(db);
  ASSERT_FALSE(r);
  EXPECT_EQ(*current_schema_version(db), 0);
  EXPECT_EQ(
      db.query_int64("SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages'")->value_or(0), 0);
}

TEST(migrations, pending_lists_what_would_run_and_changes_nothing) {
  connection db = memory_db();
  auto all = pending_migrations(db);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all->size(), all_migrations().size());
  EXPECT_EQ(db.query_int64("SELECT COUNT(*) FROM sqlite_master")->value_or(-1), 0);
  ASSERT_TRUE(migrate(db));
  EXPECT_TRUE(pending_migrations(db)->empty());
}

TEST(migrations, pending_refuses_a_database_written_by_a_newer_ordo) {
  connection db = memory_db();
  ASSERT_TRUE(migrate(db));
  ASSERT_TRUE(db.exec("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (" +
                      std::to_string(latest_schema_version() + 1) + ", 'from the future', 0)"));
  auto r = pending_migrations(db);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "schema_too_new");
}

TEST(migrations, a_migration_that_leaves_a_dangling_foreign_key_is_rolled_back) {
  connection db = memory_db();
  // Foreign keys are not enforced on this connection (as during a table rebuild), so only the
  // migration's own check can catch the dangling row.
  const migration broken[] = {
      {1, "parents", "CREATE TABLE parent (id INTEGER PRIMARY KEY);"},
      {2, "children",
       "CREATE TABLE child2 (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));"
       "INSERT INTO child2 VALUES (1, 42);"},
  };
  auto r = apply_migrations(db, broken);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "migration_invariant");
  EXPECT_NE(r.error().message.find("migration 2 (children)"), std::string::npos)
      << r.error().message;
  EXPECT_NE(r.error().message.find("child2 row 1 -> parent"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(*current_schema_version(db), 1);
  EXPECT_EQ(db.query_int64("SELECT COUNT(*) FROM sqlite_master WHERE name = 'child2'")->value_or(0),
            0);
}

TEST(migrations, the_schema_probe_accepts_a_migrated_database_and_extra_objects) {
  connection db = memory_db();
  ASSERT_TRUE(migrate(db));
  EXPECT_TRUE(verify_schema(db));
  ASSERT_TRUE(db.exec("CREATE TABLE operator_notes (x TEXT); CREATE INDEX extra ON meta(value)"));
  auto s = verify_schema(db);
  EXPECT_TRUE(s) << s.error().message;
}

TEST(migrations, the_schema_probe_names_a_missing_table_column_and_index) {
  connection db = memory_db();
  ASSERT_TRUE(migrate(db));
  auto index = db.query_text(
      "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' LIMIT 1");
  ASSERT_TRUE(index && *index) << "the schema has no named index to drop";
  ASSERT_TRUE(db.exec("DROP INDEX " + **index));
  ASSERT_TRUE(db.exec("DROP TABLE pr_comments"));
  ASSERT_TRUE(db.exec("ALTER TABLE streams DROP COLUMN last_access_ms"));
  auto s = verify_schema(db);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "schema_mismatch");
  const std::string& m = s.error().message;
  EXPECT_NE(m.find("table pr_comments is missing"), std::string::npos) << m;
  EXPECT_NE(m.find("column streams.last_access_ms is missing"), std::string::npos) << m;
  EXPECT_NE(m.find("index " + **index + " is missing"), std::string::npos) << m;
  // migrate() runs the probe too: the server refuses to start on such a file.
  auto r = migrate(db);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "schema_mismatch");
}

TEST(migrations, the_schema_probe_names_a_column_whose_type_changed) {
  connection db = memory_db();
  ASSERT_TRUE(apply_migrations(db, all_migrations().first(1)));
  // Rebuild meta with a looser column, as a hand edit might.
  ASSERT_TRUE(db.exec(
      "CREATE TABLE meta2 (key TEXT PRIMARY KEY, value BLOB); INSERT INTO meta2 SELECT * FROM "
      "meta; DROP TABLE meta; ALTER TABLE meta2 RENAME TO meta;"));
  auto s = verify_schema(db);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("column meta.value is 'value BLOB"), std::string::npos)
      << s.error().message;
}

}  // namespace
}  // namespace ordo::sqlite
