// The database file at its path, as SQLite's business: which file the connections were opened
// on (device and inode, and its -wal and -shm beside it), whether the file at the path is still
// that one, and what a replacement put there must pass before it is opened (seed 002: a store
// that kept serving a file no longer at its path).
//
// The stream engine's custody (streams/database_custody.cpp) decides what to do about it:
// refuse writes, detach, adopt. This class only looks at files, validates and removes the old
// database's sidecars; it opens no connection of its own but validate()'s.
//
// Thread safety: none; the writer thread owns it (and open(), before the writer starts).
// Invariants: (1) a candidate is validated at most once while it is unchanged (same device,
//                 inode, size and modification time): a file that failed is not retried until
//                 it changes, one that passed is not read again;
//             (2) remove_old_sidecars() unlinks only the -wal and -shm that were beside the file
//                 when it was opened (same inode), never a replacement's.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.hpp"

namespace ordo::sqlite {

// A file as stat() saw it: which file (device, inode) and which version of it (size, mtime).
struct file_identity {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const file_identity&) const = default;

  static file_identity of(const struct stat& st);
  bool same_file(const struct stat& st) const { return st.st_dev == device && st.st_ino == inode; }
};

class database_file {
 public:
  explicit database_file(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }

  // What is at the path now. `same`: the file opened (also after it was moved away and back).
  enum class state { same, missing, other };
  struct look {
    state what = state::missing;
    struct stat now {};  // valid unless `missing`
  };
  look check() const;

  // The file the connections were just opened on: `st` is the path's stat() taken after opening.
  // Forgets what was validated or rejected before.
  void opened(const struct stat& st);
  // The inode the connections were opened on (for messages).
  ino_t opened_inode() const { return opened_.inode; }

  // Whether `candidate` may be opened as an ordo database (sqlite::validate_database_file), at
  // most once per version of it (invariant 1). A refused candidate is remembered: rejected()
  // is true for it until the file changes.
  status validate(const file_identity& candidate);
  bool rejected(const file_identity& candidate) const { return rejected_ == candidate; }
  void reject(const file_identity& candidate) { rejected_ = candidate; }

  // A -wal or -shm beside the path that is not the one the opened database had (a replacement
  // that came with its own): its suffix, or nullopt.
  std::optional<std::string> foreign_sidecar() const;
  // Whether the opened database's -wal or -shm may still be at the path.
  bool has_old_sidecars() const { return wal_inode_ != 0 || shm_inode_ != 0; }
  // Whether another process still has the old database open (it holds the old -shm).
  bool old_database_open_elsewhere() const;
  // Removes the old database's -wal and -shm from the path (invariant 2) and forgets them.
  void remove_old_sidecars();

 private:
  std::string path_;
  file_identity opened_;
  // The -wal and -shm files' inodes when the database was opened (0: none), to tell the old
  // database's sidecars from ones that came with a replacement.
  ino_t wal_inode_ = 0;
  ino_t shm_inode_ = 0;
  std::optional<file_identity> rejected_;   // failed validation
  std::optional<file_identity> validated_;  // passed it
};

}  // namespace ordo::sqlite
