// Online backup: a consistent copy of a database that a server may be writing, taken with
// SQLite's backup API inside one read transaction (in WAL mode readers never block the writer,
// so appends continue while it runs).
#pragma once

#include <cstdint>
#include <string>

#include "base/result.hpp"

namespace ordo::sqlite {

struct backup_options {
  std::string source;       // the database file (ordo.db)
  std::string destination;  // the file to write
  bool overwrite = false;   // replace an existing destination
};

struct backup_report {
  std::int64_t bytes = 0;           // size of the copy
  std::int64_t schema_version = 0;  // of the copy
};

// Copies `source` to `destination`. The copy is written to `destination.partial`, checked
// (integrity_check and the schema probe), synced and renamed into place, so `destination`
// either does not exist or is a complete, verified database. The source is opened read-only.
result<backup_report> backup_database(const backup_options& options);

}  // namespace ordo::sqlite
