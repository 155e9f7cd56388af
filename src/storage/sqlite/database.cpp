#include "storage/sqlite/database.hpp"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <filesystem>

#include "storage/sqlite/migrations.hpp"

namespace ordo::sqlite {

std::string network_filesystem_name(long magic) {
  switch (static_cast<unsigned long>(magic) & 0xffffffffUL) {
    case 0x6969:
      return "nfs";
    case 0x517b:
      return "smb";
    case 0xff534d42:
      return "cifs";
    case 0xfe534d42:
      return "smb2";
    case 0x01021997:
      return "9p (v9fs, as WSL 2 mounts Windows drives)";
    case 0x53464846:
      return "drvfs (WSL 1 Windows drive)";
    case 0x5346414f:
      return "afs";
    case 0x73757245:
      return "coda";
    case 0x564c:
      return "ncp";
    default:
      return "";
  }
}

std::string network_filesystem_of(const std::string& directory) {
  struct statfs st {};
  if (::statfs(directory.c_str(), &st) != 0) return "";
  return network_filesystem_name(static_cast<long>(st.f_type));
}

namespace {

result<std::string> set_journal(connection& db, std::string_view mode) {
  auto now = db.query_text("PRAGMA journal_mode=" + std::string(mode));
  if (!now) return std::move(now).error();
  return now->value_or("?");
}

// Puts `db` in the journal mode `options` asks for; returns the mode it is in.
result<std::string> choose_journal(connection& db, const database_options& options) {
  if (options.journal == journal_mode::rollback) return set_journal(db, "DELETE");
  const std::string dir = std::filesystem::absolute(options.path).parent_path().string();
  const std::string network = network_filesystem_of(dir);
  if (options.journal == journal_mode::automatic && !network.empty()) {
    spdlog::warn(
        "the database directory '{}' is on a network filesystem ({}), where "
        "write-ahead logging cannot work; using a rollback journal (slower: readers "
        "and the writer take turns). --journal wal forces WAL",
        dir, network);
    return set_journal(db, "DELETE");
  }
  auto mode = set_journal(db, "WAL");
  if (!mode) return mode;
  if (*mode == "wal") return mode;
  if (options.journal == journal_mode::wal) {
    return make_failure(failure_kind::unavailable, "wal_unavailable",
                        "the database at '" + options.path +
                            "' cannot use write-ahead logging (journal mode is '" + *mode +
                            "'); --journal delete uses a rollback journal");
  }
  spdlog::warn(
      "write-ahead logging cannot be enabled for '{}' (journal mode is '{}'); using a "
      "rollback journal",
      options.path, *mode);
  return set_journal(db, "DELETE");
}

}  // namespace

result<connection> open_write_connection(const database_options& options) {
  auto db = connection::open(options.path, open_mode::read_write_create, options.busy_timeout);
  if (!db) return std::move(db).error();
  auto mode = choose_journal(*db, options);
  if (!mode) return std::move(mode).error();
  if (*mode != "wal" && *mode != "delete") {
    return make_failure(failure_kind::unavailable, "journal_unavailable",
                        "the database at '" + options.path +
                            "' could not be given a journal (journal mode is '" + *mode + "')");
  }
  spdlog::info("database path={} journal={}", options.path, *mode);
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

status validate_database_file(const std::string& path) {
  auto invalid = [&](const std::string& why) {
    return make_failure(failure_kind::unavailable, "invalid_database",
                        "the file at '" + path + "' is not a usable ordo database: " + why);
  };
  auto db = connection::open(path, open_mode::immutable, std::chrono::milliseconds(0));
  if (!db) return invalid(db.error().message);
  auto check = db->query_text("PRAGMA quick_check");
  if (!check) return invalid(check.error().message);
  if (check->value_or("") != "ok") return invalid("quick_check: " + check->value_or("no answer"));
  auto version = current_schema_version(*db);
  if (!version) return invalid(version.error().message);
  if (*version == 0) return invalid("it has no ordo schema (an empty or half-copied file?)");
  if (auto pending = pending_migrations(*db); !pending) return invalid(pending.error().message);
  if (auto s = verify_schema(*db); !s) return invalid(s.error().message);
  return ok_v;
}

// SQLite's unix VFS: the shared-memory lock bytes start at 120 (SQLITE_SHM_NLOCK = 8 of them);
// the byte after them, 128, is the lock every connection holds shared while it is open.
constexpr off_t k_shm_dms_lock_byte = 128;

bool wal_database_open_elsewhere(const std::string& path) {
  int fd = ::open((path + "-shm").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;  // no -shm: nobody has it open in WAL mode
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  probe.l_start = k_shm_dms_lock_byte;
  probe.l_len = 1;
  bool held = ::fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  ::close(fd);
  return held;
}

}  // namespace ordo::sqlite
