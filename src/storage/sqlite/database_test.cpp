#include "storage/sqlite/database.hpp"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ordo::sqlite {
namespace {

namespace fs = std::filesystem;

TEST(database, network_filesystems_are_recognised_by_their_statfs_magic) {
  EXPECT_EQ(network_filesystem_name(0x6969), "nfs");
  EXPECT_EQ(network_filesystem_name(static_cast<long>(0xff534d42)), "cifs");
  EXPECT_EQ(network_filesystem_name(static_cast<long>(0xfe534d42)), "smb2");
  EXPECT_NE(network_filesystem_name(0x01021997).find("9p"), std::string::npos);
  EXPECT_EQ(network_filesystem_name(0xef53), "");      // ext4
  EXPECT_EQ(network_filesystem_name(0x01021994), "");  // tmpfs
  EXPECT_EQ(network_filesystem_of(fs::temp_directory_path().string()), "");
}

class journal_test : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ordo-journal-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string mode_of(journal_mode journal) {
    database_options o;
    o.path = (dir_ / "ordo.db").string();
    o.journal = journal;
    auto db = open_write_connection(o);
    EXPECT_TRUE(db) << db.error().message;
    if (!db) return "";
    return db->query_text("PRAGMA journal_mode")->value_or("?");
  }
  fs::path dir_;
};

TEST_F(journal_test, automatic_uses_wal_on_a_local_filesystem) {
  EXPECT_EQ(mode_of(journal_mode::automatic), "wal");
}

TEST_F(journal_test, rollback_is_used_when_asked_also_for_a_database_that_was_in_wal) {
  EXPECT_EQ(mode_of(journal_mode::wal), "wal");
  EXPECT_EQ(mode_of(journal_mode::rollback), "delete");
  EXPECT_FALSE(fs::exists(dir_ / "ordo.db-wal"));
  EXPECT_EQ(mode_of(journal_mode::automatic), "wal");  // and back
}

// ---- validating a replacement file ----------------------------------------------------------

class replacement_test : public journal_test {
 protected:
  std::string make_database() {
    database_options o;
    o.path = (dir_ / "ordo.db").string();
    auto db = open_write_connection(o);
    EXPECT_TRUE(db) << db.error().message;
    return o.path;
  }
};

TEST_F(replacement_test, an_ordo_database_is_valid) {
  std::string path = make_database();
  auto s = validate_database_file(path);
  EXPECT_TRUE(s) << s.error().message;
}

TEST_F(replacement_test, garbage_an_empty_file_and_a_missing_file_are_not) {
  std::string path = (dir_ / "garbage.db").string();
  std::ofstream(path) << std::string(8192, 'x');
  auto garbage = validate_database_file(path);
  ASSERT_FALSE(garbage);
  EXPECT_EQ(garbage.error().code, "invalid_database");

  std::string empty = (dir_ / "empty.db").string();
  std::ofstream{empty};
  auto none = validate_database_file(empty);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("no ordo schema"), std::string::npos) << none.error().message;
  EXPECT_FALSE(validate_database_file((dir_ / "missing.db").string()));
}

TEST_F(replacement_test, a_database_from_a_newer_ordo_or_with_a_damaged_schema_is_not) {
  std::string path = make_database();
  {
    auto db = connection::open(path, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec(
        "INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (999, 'x', 0)"));
  }
  auto newer = validate_database_file(path);
  ASSERT_FALSE(newer);
  EXPECT_NE(newer.error().message.find("newer ordo"), std::string::npos) << newer.error().message;

  fs::remove(path);
  path = make_database();
  {
    auto db = connection::open(path, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec("DROP TABLE messages"));
  }
  auto damaged = validate_database_file(path);
  ASSERT_FALSE(damaged);
  EXPECT_NE(damaged.error().message.find("messages"), std::string::npos) << damaged.error().message;
}

TEST_F(replacement_test, validation_reads_only_the_main_file_not_a_wal_beside_it) {
  // A valid file with a foreign -wal beside it (as when it replaced a database still in use):
  // the -wal is not read and nothing is created or changed.
  std::string path = make_database();
  std::ofstream(path + "-wal") << std::string(4096, 'w');
  auto s = validate_database_file(path);
  EXPECT_TRUE(s) << s.error().message;
  EXPECT_EQ(fs::file_size(path + "-wal"), 4096u);
  EXPECT_FALSE(fs::exists(path + "-shm"));
}

TEST_F(replacement_test, a_wal_database_open_in_another_process_is_seen_through_its_shm_lock) {
  std::string path = make_database();
  EXPECT_FALSE(wal_database_open_elsewhere(path));  // no process has it open
  int ready[2], release[2];
  ASSERT_EQ(::pipe(ready), 0);
  ASSERT_EQ(::pipe(release), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto db = connection::open(path, open_mode::read_only, std::chrono::seconds(1));
    bool opened = db && db->query_int64("SELECT COUNT(*) FROM streams").ok();
    char c = opened ? 'y' : 'n';
    (void)!::write(ready[1], &c, 1);
    (void)!::read(release[0], &c, 1);
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_TRUE(wal_database_open_elsewhere(path));
  (void)!::write(release[1], &c, 1);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_FALSE(wal_database_open_elsewhere(path));
  for (int fd : {ready[0], ready[1], release[0], release[1]})
    ::close(fd);
}

}  // namespace
}  // namespace ordo::sqlite
