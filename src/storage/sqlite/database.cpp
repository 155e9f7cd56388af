#include "storage/sqlite/database.hpp"

#include "storage/sqlite/migrations.hpp"

namespace ordo::sqlite {

result<connection> open_write_connection(const database_options& options) {
  auto db = connection::open(options.path, open_mode::read_write_create, options.busy_timeout);
  if (!db) return std::move(db).error();
  auto mode = db->query_text("PRAGMA journal_mode=WAL");
  if (!mode) return std::move(mode).error();
  if (!*mode || **mode != "wal") {
    return make_failure(failure_kind::unavailable, "wal_unavailable",
                        "the database at '" + options.path +
                            "' cannot use write-ahead logging (journal mode is '" +
                            mode->value_or("?") + "')");
  }
  const char* sync =
      options.sync == sync_mode::full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL";
  for (const char* pragma : {sync, "PRAGMA foreign_keys=ON", "PRAGMA temp_store=MEMORY"}) {
    if (auto s = db->exec(pragma); !s) return std::move(s).error();
  }
  if (auto m = migrate(*db); !m) return std::move(m).error();
  return std::move(*db);
}

result<connection> open_read_connection(const database_options& options) {
  auto db = connection::open(options.path, open_mode::read_only, options.busy_timeout);
  if (!db) return std::move(db).error();
  return std::move(*db);
}

}  // namespace ordo::sqlite
