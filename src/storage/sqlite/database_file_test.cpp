// database_file against real files: what check() sees after the file is moved away, replaced or
// put back; validation of a replacement, remembered per version of the file; the old
// database's -wal and -shm told apart from a replacement's. Error paths: a file that is not an
// ordo database, a foreign sidecar, a sidecar that is not the opened one left in place.
#include "storage/sqlite/database_file.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "storage/sqlite/database.hpp"

namespace ordo::sqlite {
namespace {

namespace fs = std::filesystem;

class database_file_test : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(testing::TempDir()) / "database_file_test";
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    path_ = (dir_ / "ordo.db").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // An ordo database at `path` (migrated, closed again).
  static void create_database(const std::string& path) {
    database_options o;
    o.path = path;
    auto db = open_write_connection(o);
    ASSERT_TRUE(db) << db.error().message;
  }
  static void write_file(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }
  // An ordo database at path_ with the -wal and -shm of its last writer beside it.
  void create_database_with_sidecars() {
    create_database(path_);
    write_file(path_ + "-wal", "old wal");
    write_file(path_ + "-shm", "old shm");
  }
  struct stat stat_of(const std::string& path) const {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
    return st;
  }

  fs::path dir_;
  std::string path_;
};

TEST_F(database_file_test, check_sees_the_opened_file_a_missing_one_and_another) {
  create_database(path_);
  database_file file(path_);
  file.opened(stat_of(path_));
  EXPECT_EQ(file.check().what, database_file::state::same);

  fs::rename(path_, path_ + ".moved");
  EXPECT_EQ(file.check().what, database_file::state::missing);

  create_database(path_);
  auto other = file.check();
  EXPECT_EQ(other.what, database_file::state::other);
  EXPECT_NE(other.now.st_ino, file.opened_inode());

  // Moved back: the same file again.
  fs::rename(path_ + ".moved", path_);
  EXPECT_EQ(file.check().what, database_file::state::same);
}

TEST_F(database_file_test, a_valid_replacement_passes_validation_once_per_version) {
  create_database(path_);
  database_file file(path_);
  auto candidate = file_identity::of(stat_of(path_));
  EXPECT_TRUE(file.validate(candidate).ok());
  // Remembered: the file is not read again while it is unchanged, even if it would now fail.
  fs::permissions(path_, fs::perms::none);
  EXPECT_TRUE(file.validate(candidate).ok());
  fs::permissions(path_, fs::perms::owner_read | fs::perms::owner_write);
}

TEST_F(database_file_test,
       a_file_that_is_not_an_ordo_database_fails_and_is_rejected_until_it_changes) {
  write_file(path_, "not a database at all");
  database_file file(path_);
  auto candidate = file_identity::of(stat_of(path_));
  auto valid = file.validate(candidate);
  ASSERT_FALSE(valid.ok());
  EXPECT_EQ(valid.error().code, "invalid_database") << valid.error().message;
  file.reject(candidate);
  EXPECT_TRUE(file.rejected(candidate));

  // Written again (another size): another version, no longer the rejected one.
  write_file(path_, "still not a database, but longer than before");
  EXPECT_FALSE(file.rejected(file_identity::of(stat_of(path_))));
}

TEST_F(database_file_test, opening_forgets_what_was_validated_and_rejected) {
  write_file(path_, "junk");
  database_file file(path_);
  auto junk = file_identity::of(stat_of(path_));
  file.reject(junk);
  fs::remove(path_);
  create_database(path_);
  file.opened(stat_of(path_));
  EXPECT_FALSE(file.rejected(junk));
}

TEST_F(database_file_test, the_old_databases_sidecars_are_told_from_a_replacements) {
  create_database_with_sidecars();
  database_file file(path_);
  file.opened(stat_of(path_));
  EXPECT_TRUE(file.has_old_sidecars());
  EXPECT_EQ(file.foreign_sidecar(), std::nullopt);

  // A replacement that came with a -wal of its own (the old one kept elsewhere, so the new
  // file cannot reuse its inode number).
  fs::rename(path_ + "-wal", path_ + "-wal.old");
  write_file(path_ + "-wal", "a replacement's wal");
  EXPECT_EQ(file.foreign_sidecar(), std::optional<std::string>("-wal"));
}

TEST_F(database_file_test, removing_old_sidecars_leaves_a_replacements_in_place) {
  create_database_with_sidecars();
  database_file file(path_);
  file.opened(stat_of(path_));
  fs::rename(path_ + "-shm", path_ + "-shm.old");  // kept: its inode number stays taken
  write_file(path_ + "-shm", "a replacement's shm");

  file.remove_old_sidecars();
  EXPECT_FALSE(fs::exists(path_ + "-wal"));  // the old one: removed
  EXPECT_TRUE(fs::exists(path_ + "-shm"));   // not the opened one: kept
  EXPECT_FALSE(file.has_old_sidecars());
}

TEST_F(database_file_test, nothing_beside_the_file_means_no_old_sidecars) {
  create_database(path_);
  fs::remove(path_ + "-wal");
  fs::remove(path_ + "-shm");
  database_file file(path_);
  file.opened(stat_of(path_));
  EXPECT_FALSE(file.has_old_sidecars());
  EXPECT_FALSE(file.old_database_open_elsewhere());
}

}  // namespace
}  // namespace ordo::sqlite
