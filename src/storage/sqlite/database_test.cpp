#include "storage/sqlite/database.hpp"

#include <gtest/gtest.h>

#include <filesystem>

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

}  // namespace
}  // namespace ordo::sqlite
