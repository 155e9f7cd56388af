// backup_database against real SQLite files: the copy of a database that is open in WAL mode
// (its latest commits still in the -wal file) holds the same contents, passes its integrity
// check, is a rollback-journal database of its own marked as restored, and no .partial file is
// left beside it. Error paths: an existing destination without overwrite, a missing or
// non-database source, a database of a newer ordo, a destination directory that does not exist
// or cannot be written, a destination that is a directory.
#include "storage/sqlite/backup.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {
namespace {

namespace fs = std::filesystem;

class backup_test : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / "backup_test";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    source_ = (dir_ / "ordo.db").string();
    destination_ = (dir_ / "copy.db").string();
  }
  void TearDown() override {
    source_db_.reset();
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  // A migrated source database in WAL mode, left open (as a running server would) with its
  // commits not checkpointed: they live only in the -wal file.
  void make_source() {
    auto db = connection::open(source_, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    source_db_.emplace(std::move(*db));
    ASSERT_TRUE(source_db_->exec("PRAGMA journal_mode=WAL"));
    ASSERT_TRUE(migrate(*source_db_));
    ASSERT_TRUE(source_db_->exec("PRAGMA wal_autocheckpoint=0"));
    auto tables = stream_tables::prepare(*source_db_);
    ASSERT_TRUE(tables) << tables.error().message;
    ASSERT_TRUE(tables->begin_immediate());
    stream_row row;
    row.path = "a";
    row.content_type = "text/plain";
    row.incarnation = 3;
    auto id = tables->insert_stream(row);
    ASSERT_TRUE(id);
    ASSERT_TRUE(tables->insert_message(*id, stream_position{1}, std::string(4096, 'x')));
    ASSERT_TRUE(tables->merge_log());
    ASSERT_TRUE(tables->insert_message(*id, stream_position{2}, "two"));  // in the append log
    ASSERT_TRUE(tables->commit());
    ASSERT_TRUE(source_db_->exec(
        "INSERT INTO projects (id, name, created_at_ms, updated_at_ms) VALUES ('p', 'P', 1, 1)"));
    ASSERT_TRUE(fs::exists(source_ + "-wal"));
  }

  // Everything the tests write, as one text, for comparing two databases.
  static std::string contents(connection& db) {
    std::string out;
    for (const char* sql :
         {"SELECT group_concat(id || ':' || path || ':' || incarnation, ',') FROM "
          "(SELECT * FROM streams ORDER BY id)",
          "SELECT group_concat(stream_id || ':' || seq || ':' || length(data), ',') FROM "
          "(SELECT * FROM messages ORDER BY stream_id, seq)",
          "SELECT group_concat(stream_id || ':' || seq || ':' || length(data), ',') FROM "
          "(SELECT * FROM recent_messages ORDER BY pos)",
          "SELECT group_concat(id || ':' || name, ',') FROM (SELECT * FROM projects ORDER BY id)",
          "SELECT group_concat(version, ',') FROM "
          "(SELECT version FROM schema_migrations ORDER BY version)"}) {
      auto text = db.query_text(sql);
      EXPECT_TRUE(text) << sql << ": " << text.error().message;
      out += (text && *text ? **text : std::string("<none>")) + "\n";
    }
    return out;
  }

  result<backup_report> backup(bool overwrite = false) {
    return backup_database({source_, destination_, overwrite});
  }

  fs::path dir_;
  std::string source_;
  std::string destination_;
  std::optional<connection> source_db_;
};

TEST_F(backup_test, the_copy_of_a_live_wal_database_has_its_contents_and_is_verified) {
  make_source();
  const std::string before = contents(*source_db_);
  auto report = backup();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_EQ(report->schema_version, latest_schema_version());
  EXPECT_EQ(report->bytes, static_cast<std::int64_t>(fs::file_size(destination_)));
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
  EXPECT_FALSE(fs::exists(destination_ + "-wal")) << "the copy is a database of its own";

  auto copy = connection::open(destination_, open_mode::read_only, std::chrono::seconds(1));
  ASSERT_TRUE(copy);
  EXPECT_EQ(contents(*copy), before);
  EXPECT_NE(before.find("\n1:1:4096\n1:2:3\n"), std::string::npos)
      << "the append log's message is in the copy";
  EXPECT_EQ(copy->query_text("PRAGMA integrity_check")->value_or(""), "ok");
  EXPECT_EQ(copy->query_text("PRAGMA journal_mode")->value_or(""), "delete");
  auto mark = copy->query_text("SELECT value FROM meta WHERE key = '" +
                               std::string(k_meta_restored_backup) + "'");
  ASSERT_TRUE(mark);
  EXPECT_TRUE(*mark) << "a server opening the copy renews its epoch";
  auto source_mark = source_db_->query_text("SELECT value FROM meta WHERE key = '" +
                                            std::string(k_meta_restored_backup) + "'");
  ASSERT_TRUE(source_mark);
  EXPECT_FALSE(*source_mark) << "the source is not written";

  // The source keeps working while and after the copy is taken.
  EXPECT_TRUE(source_db_->exec(
      "INSERT INTO projects (id, name, created_at_ms, updated_at_ms) VALUES ('q', 'Q', 2, 2)"));
}

TEST_F(backup_test, overwrite_replaces_an_existing_destination) {
  make_source();
  { std::ofstream(destination_) << "old contents"; }
  auto report = backup(/*overwrite=*/true);
  ASSERT_TRUE(report) << report.error().message;
  auto copy = connection::open(destination_, open_mode::read_only, std::chrono::seconds(1));
  ASSERT_TRUE(copy);
  EXPECT_EQ(contents(*copy), contents(*source_db_));
}

TEST_F(backup_test, a_stale_partial_file_is_replaced) {
  make_source();
  { std::ofstream(destination_ + ".partial") << "left over from a crash"; }
  auto report = backup();
  ASSERT_TRUE(report) << report.error().message;
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
  auto copy = connection::open(destination_, open_mode::read_only, std::chrono::seconds(1));
  ASSERT_TRUE(copy);
  EXPECT_EQ(contents(*copy), contents(*source_db_));
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(backup_test, an_existing_destination_is_refused_without_overwrite_and_left_alone) {
  make_source();
  { std::ofstream(destination_) << "keep me"; }
  auto report = backup();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().kind, failure_kind::conflict);
  EXPECT_EQ(report.error().code, "destination_exists");
  std::ifstream in(destination_);
  std::string kept((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(kept, "keep me");
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
}

TEST_F(backup_test, a_missing_source_is_not_found_and_nothing_is_written) {
  auto report = backup();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().kind, failure_kind::not_found);
  EXPECT_EQ(report.error().code, "database_not_found");
  EXPECT_FALSE(fs::exists(source_)) << "the source is not created";
  EXPECT_FALSE(fs::exists(destination_));
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
}

TEST_F(backup_test, a_source_that_is_not_a_database_is_refused) {
  { std::ofstream(source_) << std::string(8192, 'z'); }
  auto report = backup();
  ASSERT_FALSE(report);
  EXPECT_FALSE(fs::exists(destination_));
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
}

TEST_F(backup_test, a_database_of_a_newer_ordo_is_refused) {
  make_source();
  ASSERT_TRUE(
      source_db_->exec("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (" +
                       std::to_string(latest_schema_version() + 1) + ", 'from the future', 0)"));
  auto report = backup();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, "schema_too_new");
  EXPECT_FALSE(fs::exists(destination_));
}

TEST_F(backup_test, a_destination_directory_that_does_not_exist_is_refused) {
  make_source();
  destination_ = (dir_ / "missing" / "copy.db").string();
  auto report = backup();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().kind, failure_kind::not_found);
  EXPECT_EQ(report.error().code, "destination_directory_not_found");
  // A file where the directory should be.
  { std::ofstream(dir_ / "file") << "x"; }
  destination_ = (dir_ / "file" / "copy.db").string();
  report = backup();
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, "destination_directory_not_found");
}

TEST_F(backup_test, a_destination_that_cannot_be_created_fails_and_leaves_nothing) {
  make_source();
  // No process may create files in /proc, whatever its privileges.
  destination_ = "/proc/ordo_backup_test.db";
  auto report = backup();
  ASSERT_FALSE(report);
  EXPECT_FALSE(fs::exists(destination_));
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
}

TEST_F(backup_test, a_read_only_destination_directory_fails_and_leaves_nothing) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  make_source();
  const fs::path locked = dir_ / "locked";
  fs::create_directories(locked);
  fs::permissions(locked, fs::perms::owner_read | fs::perms::owner_exec);
  destination_ = (locked / "copy.db").string();
  auto report = backup();
  fs::permissions(locked, fs::perms::owner_all);
  ASSERT_FALSE(report);
  EXPECT_FALSE(fs::exists(destination_));
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
}

TEST_F(backup_test, a_destination_that_is_a_directory_fails_on_the_rename_and_cleans_up) {
  make_source();
  fs::create_directories(destination_);
  fs::create_directories(fs::path(destination_) / "inside");  // a non-empty directory
  auto report = backup(/*overwrite=*/true);
  ASSERT_FALSE(report);
  EXPECT_EQ(report.error().code, "backup_failed");
  EXPECT_TRUE(fs::is_directory(destination_));
  EXPECT_FALSE(fs::exists(destination_ + ".partial"));
}

}  // namespace
}  // namespace ordo::sqlite
