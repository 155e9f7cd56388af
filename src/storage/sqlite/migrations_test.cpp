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

}  // namespace
}  // namespace ordo::sqlite
