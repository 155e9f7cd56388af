#include "storage/sqlite/migrations.hpp"

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <cstdio>
#include <set>

namespace ordo::sqlite {
namespace {

connection memory_db() {
  auto db = connection::open(":memory:", open_mode::read_write_create, std::chrono::seconds(1));
  EXPECT_TRUE(db);
  return std::move(*db);
}

// Migrates `db`, then records a migration beyond this build's latest, as a newer ordo would.
void record_a_newer_migration(connection& db) {
  ASSERT_TRUE(migrate(db));
  ASSERT_TRUE(db.exec("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (" +
                      std::to_string(latest_schema_version() + 1) + ", 'from the future', 0)"));
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
  record_a_newer_migration(db);
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
  record_a_newer_migration(db);
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

// ---- version 5: messages apart from their key (issue 16) -------------------------------------

std::span<const migration> migrations_upto(std::int64_t version) {
  auto all = all_migrations();
  std::size_t n = 0;
  while (n < all.size() && all[n].version <= version)
    ++n;
  return all.subspan(0, n);
}

constexpr std::int64_t k_big_message_bytes = 64LL << 20;

// A database file at `version` with a 64 MiB message in stream 1 between the small messages of
// streams 0 and 2 (the big one is every other stream's neighbour in the key order).
std::string database_with_big_message(const std::string& name, std::int64_t version) {
  std::string path = testing::TempDir() + name;
  std::remove(path.c_str());
  auto db = connection::open(path, open_mode::read_write_create, std::chrono::seconds(1));
  EXPECT_TRUE(db);
  EXPECT_TRUE(apply_migrations(*db, migrations_upto(version)));
  EXPECT_TRUE(db->exec("BEGIN"));
  for (int stream : {0, 2})
    for (int seq = 1; seq <= 200; ++seq)
      EXPECT_TRUE(db->exec("INSERT INTO messages (stream_id, seq, data) VALUES (" +
                           std::to_string(stream) + ", " + std::to_string(seq) + ", 'small')"));
  EXPECT_TRUE(db->exec("INSERT INTO messages (stream_id, seq, data) VALUES (1, 1, zeroblob(" +
                       std::to_string(k_big_message_bytes) + "))"));
  EXPECT_TRUE(db->exec("COMMIT"));
  return path;
}

// Pages a fresh connection to `path` reads from the file for a tail lookup of stream 2 and a
// read of stream 0's messages: what the writer and a reader do beside the big message.
int pages_read_beside_big_message(const std::string& path) {
  auto db = connection::open(path, open_mode::read_write_create, std::chrono::seconds(1));
  EXPECT_TRUE(db);
  int current = 0, high = 0;
  sqlite3_db_status(db->handle(), SQLITE_DBSTATUS_CACHE_MISS, &current, &high, 1);
  auto tail = db->query_int64("SELECT MAX(seq) FROM messages WHERE stream_id = 2");
  EXPECT_EQ(tail->value_or(0), 200);
  auto count = db->query_int64(
      "SELECT COUNT(*) FROM (SELECT seq, data FROM messages WHERE stream_id = 0 AND seq > 150 "
      "ORDER BY seq)");
  EXPECT_EQ(count->value_or(0), 50);
  sqlite3_db_status(db->handle(), SQLITE_DBSTATUS_CACHE_MISS, &current, &high, 0);
  return current;
}

TEST(migrations, no_message_size_reaches_another_streams_tail_lookup_or_read) {
  // The layout before version 5, as the control: its seeks load the whole 64 MiB entry.
  std::string before = database_with_big_message("ordo_v4_big.db", 4);
  EXPECT_GT(pages_read_beside_big_message(before), 10'000);
  std::string after = database_with_big_message("ordo_v5_big.db", latest_schema_version());
  EXPECT_LT(pages_read_beside_big_message(after), 50);
  // The writer's tail lookup is answered from the index alone.
  auto db = connection::open(after, open_mode::read_write_create, std::chrono::seconds(1));
  auto plan = db->prepare("EXPLAIN QUERY PLAN SELECT MAX(seq) FROM messages WHERE stream_id = ?");
  ASSERT_TRUE(plan);
  ASSERT_TRUE(*plan->step());
  EXPECT_NE(std::string(plan->column_text(3)).find("COVERING INDEX messages_by_position"),
            std::string::npos)
      << plan->column_text(3);
  std::remove(before.c_str());
  std::remove(after.c_str());
}

TEST(migrations, version_5_moves_every_message_into_the_new_layout_unchanged) {
  connection db = memory_db();
  ASSERT_TRUE(apply_migrations(db, migrations_upto(4)));
  ASSERT_TRUE(
      db.exec("INSERT INTO messages (stream_id, seq, data) VALUES (2, 1, 'a'), (1, 2, x'00ff'), "
              "(1, 1, 'first'), (2, 2, 'b')"));
  ASSERT_TRUE(migrate(db));
  EXPECT_TRUE(verify_schema(db));
  auto rows = db.prepare("SELECT stream_id, seq, hex(data) FROM messages ORDER BY id");
  ASSERT_TRUE(rows);
  std::vector<std::string> seen;
  while (*rows->step())
    seen.push_back(std::to_string(rows->column_int64(0)) + "/" +
                   std::to_string(rows->column_int64(1)) + "/" + std::string(rows->column_text(2)));
  // In key order, so each stream's rows are together.
  EXPECT_EQ(seen, (std::vector<std::string>{"1/1/6669727374", "1/2/00FF", "2/1/61", "2/2/62"}));
  EXPECT_FALSE(db.exec("INSERT INTO messages (stream_id, seq, data) VALUES (1, 2, 'again')"))
      << "(stream_id, seq) stays unique";
  auto without_rowid = db.query_int64(
      "SELECT COUNT(*) FROM sqlite_master WHERE name = 'messages' AND sql LIKE '%WITHOUT ROWID%'");
  EXPECT_EQ(without_rowid->value_or(1), 0);
}

}  // namespace
}  // namespace ordo::sqlite
