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
#include <vector>

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

// The migrations `migrate` would apply, in order; schema_too_new for a database written by a
// newer ordo. Reads only.
result<std::vector<migration>> pending_migrations(connection& db);

// Applies every migration newer than the database's version, then verifies the schema.
// Returns the number applied.
result<int> migrate(connection& db);

// Applies those of `migrations` newer than the database's version, each in its own exclusive
// transaction that also records it and fails whole if it leaves a foreign key dangling. migrate()
// is this with all_migrations(); tests pass their own lists.
result<int> apply_migrations(connection& db, std::span<const migration> migrations);

// The schema probe: compares the database's tables, columns and indexes with those the
// migrations up to its version create (built in a scratch in-memory database) and answers
// schema_mismatch naming every difference — a table dropped, a column altered or missing — as
// when the file was edited outside ordo. Extra tables and indexes are allowed. Reads only.
status verify_schema(connection& db);

}  // namespace ordo::sqlite
