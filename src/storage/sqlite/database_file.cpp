#include "storage/sqlite/database_file.hpp"

#include <unistd.h>

#include <utility>

#include "storage/sqlite/database.hpp"

namespace ordo::sqlite {

namespace {

constexpr std::int64_t k_nanoseconds_per_second = 1'000'000'000;

// The inode of the file at `path`, or 0 when there is none.
ino_t inode_at(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

}  // namespace

file_identity file_identity::of(const struct stat& st) {
  return file_identity{
      st.st_dev, st.st_ino, st.st_size,
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * k_nanoseconds_per_second + st.st_mtim.tv_nsec};
}

database_file::look database_file::check() const {
  look l;
  if (::stat(path_.c_str(), &l.now) != 0) return l;
  l.what = opened_.same_file(l.now) ? state::same : state::other;
  return l;
}

void database_file::opened(const struct stat& st) {
  opened_ = file_identity::of(st);
  wal_inode_ = inode_at(path_ + "-wal");
  shm_inode_ = inode_at(path_ + "-shm");
  rejected_.reset();
  validated_.reset();
}

status database_file::validate(const file_identity& candidate) {
  if (validated_ == candidate) return ok_v;
  if (auto s = validate_database_file(path_); !s) return s;
  validated_ = candidate;
  return ok_v;
}

std::optional<std::string> database_file::foreign_sidecar() const {
  for (auto [suffix, ours] : {std::pair{"-wal", wal_inode_}, std::pair{"-shm", shm_inode_}}) {
    ino_t there = inode_at(path_ + suffix);
    if (there != 0 && there != ours) return std::string(suffix);
  }
  return std::nullopt;
}

bool database_file::old_database_open_elsewhere() const {
  return wal_database_open_elsewhere(path_) && inode_at(path_ + "-shm") == shm_inode_;
}

void database_file::remove_old_sidecars() {
  for (auto [suffix, ours] : {std::pair{"-wal", wal_inode_}, std::pair{"-shm", shm_inode_}}) {
    if (ours != 0 && inode_at(path_ + suffix) == ours) ::unlink((path_ + suffix).c_str());
  }
  wal_inode_ = 0;
  shm_inode_ = 0;
}

}  // namespace ordo::sqlite
