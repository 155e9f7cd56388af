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

struct database_options {
  std::string path;
  sync_mode sync = sync_mode::full;
  std::chrono::milliseconds busy_timeout{5000};
};

// Opens (creating if needed) the database, switches it to WAL, applies pending migrations.
result<connection> open_write_connection(const database_options& options);

result<connection> open_read_connection(const database_options& options);

}  // namespace ordo::sqlite
