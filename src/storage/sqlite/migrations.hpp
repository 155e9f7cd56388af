// Versioned schema migrations, embedded in the binary.
//
// Each migration runs in its own BEGIN EXCLUSIVE transaction together with the row that
// records it in schema_migrations, so a crash leaves the database either before or after a
// migration, never half-way. A database whose recorded version is newer than the newest
// migration this binary knows was written by a newer ordo and is refused.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.hpp"
#include "storage/sqlite/connection.hpp"

namespace ordo::sqlite {

struct migration {
  std::int64_t version;
  std::string_view name;
  std::string_view sql;
};

// All migrations, in ascending version order.
std::span<const migration> all_migrations();

std::int64_t latest_schema_version();

// The version recorded in the database (0 for a new, empty database).
result<std::int64_t> current_schema_version(connection& db);

// Applies every migration newer than the database's version. Returns the number applied.
result<int> migrate(connection& db);

}  // namespace ordo::sqlite
