// The PostgreSQL schema: versioned migrations embedded in the binary, as for SQLite
// (storage/sqlite/migrations.hpp), with the same guarantees:
//   - a migration commits together with the row that records it, or not at all;
//   - a database whose version is newer than this binary knows is refused (schema_too_new);
//   - the schema probe compares the database with what the migrations create and names every
//     difference (schema_mismatch).
// What differs:
//   - PostgreSQL's DDL is transactional, so every pending migration runs in one transaction,
//     under an advisory lock: several ordo nodes starting at once migrate the database once,
//     and the others find it migrated.
//   - Foreign keys are always enforced by PostgreSQL itself, so no migration can leave a row
//     referring to a missing one (SQLite's migrations check that themselves).
//   - The probe compares with a description of the schema written down with the migrations
//     (checked by a test against a database they migrated), so it only reads.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "storage/postgres/connection.hpp"

namespace ordo::postgres {

struct migration {
  std::int64_t version;
  std::string_view name;
  std::string_view sql;
};

// All migrations, in ascending version order.
std::span<const migration> all_migrations();

std::int64_t latest_schema_version();

// The advisory lock (pg_advisory_xact_lock) every migration run holds.
inline constexpr std::int64_t k_migration_lock = 0x6f72646f'6d696772;  // "ordomigr"

// The version recorded in the database (0 for a database ordo has not migrated).
result<std::int64_t> current_schema_version(connection& db);

// The migrations `migrate` would apply, in order; schema_too_new for a database written by a
// newer ordo. Reads only.
result<std::vector<migration>> pending_migrations(connection& db);

// Applies every migration newer than the database's version in one transaction, then verifies
// the schema. Returns the number applied.
result<int> migrate(connection& db);

// Applies those of `migrations` newer than the database's version; migrate() is this with
// all_migrations(). Tests pass their own lists.
result<int> apply_migrations(connection& db, std::span<const migration> migrations);

// The schema probe: compares the tables, columns (type, nullability) and indexes of the
// connection's schema with those the migrations create (latest_schema_description()), and
// answers schema_mismatch naming every difference. Extra tables, columns and indexes are allowed.
// A database at an older version is schema_outdated (run migrate). Reads only: it works over a
// read-only connection and needs no right to create anything.
status verify_schema(connection& db);

// A schema as the probe sees it, one line per column ("column table.name type[ NOT NULL]") and
// per index ("index name definition"), from the connection's current schema.
result<std::string> describe_schema(connection& db);
// The description of the schema every migration makes, written down with them; a test compares
// it with describe_schema() of a database they migrated, and prints the new text when a
// migration changes it.
std::string_view latest_schema_description();

}  // namespace ordo::postgres
