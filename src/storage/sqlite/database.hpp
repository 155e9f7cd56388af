// Opening the database file: the write connection (WAL, durability pragmas, migrations) and the
// read-only connections the reader threads use.
#pragma once

#include <chrono>
#include <string>

#include "base/result.hpp"
#include "storage/sqlite/connection.hpp"

namespace ordo::sqlite {

// full: every commit is fsynced before writers are acknowledged (PRAGMA synchronous=FULL).
// normal: commits survive a crash of ordo but may be lost on power failure (synchronous=NORMAL
// in WAL mode syncs only at checkpoints).
enum class sync_mode { full, normal };

// wal: write-ahead logging, required (readers never block the writer). rollback: a rollback
// journal (DELETE), for filesystems where WAL's shared memory cannot work. automatic: WAL,
// unless the file lives on a network filesystem (NFS, SMB, 9p as used for WSL paths to Windows
// drives) or WAL cannot be enabled, then rollback with a warning.
enum class journal_mode { automatic, wal, rollback };

struct database_options {
  std::string path;
  sync_mode sync = sync_mode::full;
  journal_mode journal = journal_mode::automatic;
  // How long a statement waits for a lock held by another process before failing with
  // storage_busy (503).
  std::chrono::milliseconds busy_timeout{5000};
};

// The name of the network filesystem (as WAL cannot work on it) `directory` lives on, or an
// empty string for a local one. Classifies statfs magic numbers: network_filesystem_name.
std::string network_filesystem_of(const std::string& directory);
std::string network_filesystem_name(long statfs_magic);

// Opens (creating if needed) the database in the chosen journal mode (the choice and any
// warning are logged), applies pending migrations.
result<connection> open_write_connection(const database_options& options);

result<connection> open_read_connection(const database_options& options);

// Whether the file at `path` is an ordo database a server may switch to: SQLite's quick check
// passes, it has a schema this binary knows (not newer) and the schema probe finds it intact.
// Reads only the main file (open_mode::immutable): a -wal or -shm beside it is not consulted,
// as it may still belong to the database the file replaced. invalid_database names what is
// wrong.
status validate_database_file(const std::string& path);

// Whether a process other than this one has the WAL-mode database at `path` open: every SQLite
// connection in WAL mode holds a shared lock on one byte of the -shm file (the "DMS" lock) while
// it is open. Call only when this process has no connection to it.
bool wal_database_open_elsewhere(const std::string& path);

}  // namespace ordo::sqlite
