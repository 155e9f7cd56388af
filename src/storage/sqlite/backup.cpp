#include "storage/sqlite/backup.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/rfc3339.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {
namespace {

namespace fs = std::filesystem;

// fsyncs a file or directory so a rename of the copy survives a power cut.
status sync_path(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return make_failure(failure_kind::internal, "backup_failed",
                        "cannot open '" + path + "' to sync it: " + std::strerror(errno));
  }
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) {
    return make_failure(failure_kind::internal, "backup_failed",
                        "fsync of '" + path + "' failed: " + std::strerror(err));
  }
  return ok_v;
}

status copy_pages(connection& from, connection& to) {
  sqlite3_backup* b = sqlite3_backup_init(to.handle(), "main", from.handle(), "main");
  if (!b) {
    return storage_failure(sqlite3_errcode(to.handle()), "starting the backup",
                           sqlite3_errmsg(to.handle()));
  }
  // All pages in one step: one read transaction on the source, so the copy is one consistent
  // state of it, and (WAL) the server's writer is never blocked meanwhile.
  int rc = sqlite3_backup_step(b, -1);
  sqlite3_backup_finish(b);
  if (rc != SQLITE_DONE) {
    return storage_failure(rc, "copying the database", sqlite3_errmsg(to.handle()));
  }
  return ok_v;
}

status verify_copy(connection& copy) {
  auto integrity = copy.query_text("PRAGMA integrity_check");
  if (!integrity) return std::move(integrity).error();
  if (!*integrity || **integrity != "ok") {
    return make_failure(failure_kind::internal, "backup_failed",
                        "the copy failed its integrity check: " + integrity->value_or("?"));
  }
  return verify_schema(copy);
}

// Marks the copy so that a server opening it renews its epoch (see stream_tables.hpp).
status mark_restored(connection& copy) {
  auto now = std::chrono::system_clock::now();
  auto mark = copy.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
  if (!mark) return std::move(mark).error();
  mark->bind_text(1, k_meta_restored_backup);
  mark->bind_text(
      2,
      format_rfc3339_ms(
          std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count()));
  return mark->run();
}

}  // namespace

result<backup_report> backup_database(const backup_options& options) {
  std::error_code ec;
  if (!fs::exists(options.source, ec)) {
    return make_failure(failure_kind::not_found, "database_not_found",
                        "no database at '" + options.source + "'");
  }
  if (!options.overwrite && fs::exists(options.destination, ec)) {
    return make_failure(
        failure_kind::conflict, "destination_exists",
        "'" + options.destination + "' already exists; choose another name or pass --force");
  }
  const fs::path parent = fs::absolute(options.destination, ec).parent_path();
  if (!fs::is_directory(parent, ec)) {
    return make_failure(failure_kind::not_found, "destination_directory_not_found",
                        "the directory of '" + options.destination + "' does not exist");
  }
  const std::string partial = options.destination + ".partial";
  fs::remove(partial, ec);

  auto from = connection::open(options.source, open_mode::inspect, std::chrono::seconds(5));
  if (!from) return std::move(from).error();
  auto version = pending_migrations(*from);  // refuses a database of a newer ordo
  if (!version) return std::move(version).error();

  backup_report report;
  {
    auto to = connection::open(partial, open_mode::read_write_create, std::chrono::seconds(5));
    if (!to) return std::move(to).error();
    auto fail = [&](failure f) -> result<backup_report> {
      *to = connection();
      fs::remove(partial, ec);
      return f;
    };
    if (auto s = copy_pages(*from, *to); !s) return fail(std::move(s).error());
    // The copy is a database of its own: no WAL content beside it, its journal folded in.
    if (auto s = to->exec("PRAGMA journal_mode=DELETE"); !s) return fail(std::move(s).error());
    if (auto s = mark_restored(*to); !s) return fail(std::move(s).error());
    if (auto s = verify_copy(*to); !s) return fail(std::move(s).error());
    auto v = current_schema_version(*to);
    if (!v) return fail(std::move(v).error());
    report.schema_version = *v;
  }
  if (auto s = sync_path(partial); !s) return std::move(s).error();
  fs::rename(partial, options.destination, ec);
  if (ec) {
    fs::remove(partial, ec);
    return make_failure(failure_kind::internal, "backup_failed",
                        "cannot move the copy to '" + options.destination + "': " + ec.message());
  }
  if (auto s = sync_path(parent.string()); !s) return std::move(s).error();
  report.bytes = static_cast<std::int64_t>(fs::file_size(options.destination, ec));
  return report;
}

}  // namespace ordo::sqlite
