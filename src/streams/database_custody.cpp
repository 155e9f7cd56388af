// Custody of the database file: the writer makes sure the file it writes to is the one at the
// configured path, and adopts a valid file put there in its place (seed 002: a store that kept
// serving a file no longer at its path). The looking at files is SQLite's business, in
// storage/sqlite/database_file.cpp; what to do about it is here. check_database_file() compares
// the file at the path with the one opened; adopt_database_file() validates a replacement on its
// own first (the old database's -wal is still beside it), detach_database() lets the readers finish
// and closes every old connection, attach_database() opens the file (also at startup), renews the
// epoch of an adopted or restored file and rebuilds the registry from it.
//
// Thread safety: the writer thread only (attach_database() also from open(), before the writer
// starts). file_lost_ is atomic because writable() and /ready read it from any thread; the
// registry swap in attach_database() takes registry_mu_.
// Invariants: (1) while file_lost_ is set, no batch, maintenance or merge writes;
//             (2) a file is adopted only after it passed validation and is still, when opened,
//                 the file that was validated (device and inode);
//             (3) an adopted or restored file gets a new database epoch, so offsets issued from
//                 another file are never taken for positions in this one;
//             (4) the old file's -wal and -shm are removed only when they are still the ones
//                 opened and no other process holds the old database open;
//             (5) every record of the old registry is marked replaced once the new one is in.
#include "streams/stream_engine.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "storage/sqlite/session_tables.hpp"
#include "streams/stream_engine_internal.hpp"

namespace ordo {

void stream_engine::log_file_problem(const std::string& message) {
  if (message == last_file_problem_) return;
  last_file_problem_ = message;
  spdlog::error("{}", message);
}

status stream_engine::check_database_file() {
  const std::string& path = file_.path();
  sqlite::database_file::look now = file_.check();
  if (now.what == sqlite::database_file::state::same && attached_) {
    if (file_lost_) {
      // Moved away and back: the connections never left this file.
      file_lost_ = false;
      last_file_problem_.clear();
      spdlog::warn("the database file '{}' is back at its path; writes resume", path);
    }
    return ok_v;
  }
  const bool present = now.what != sqlite::database_file::state::missing;
  if (!file_lost_) {
    file_lost_reason_ = !present ? "the database file '" + path + "' was moved or deleted"
                                 : "the database file '" + path +
                                       "' was replaced by another file (inode " +
                                       std::to_string(file_.opened_inode()) + " -> " +
                                       std::to_string(now.now.st_ino) + ")";
    file_lost_ = true;
    log_file_problem(file_lost_reason_ +
                     "; refusing writes so nothing is written to a file no longer at its path");
  }
  if (present) adopt_database_file(now.now);
  if (!file_lost_) return ok_v;
  return make_failure(failure_kind::unavailable, "storage_replaced",
                      file_lost_reason_ +
                          "; writes are refused until a valid ordo database is at the path "
                          "(ordo switches to it) or ordo is restarted");
}

void stream_engine::adopt_database_file(const struct stat& st) {
  const std::string& path = file_.path();
  sqlite::file_identity candidate = sqlite::file_identity::of(st);
  if (file_.rejected(candidate)) return;  // unchanged since it failed validation
  auto reject = [&](const std::string& why) {
    file_.reject(candidate);
    file_lost_reason_ = "the database file '" + path + "' was replaced by a file ordo cannot use";
    log_file_problem(why + "; writes stay refused until a valid ordo database is at the path");
  };
  if (attached_) {
    if (auto valid = file_.validate(candidate); !valid) {
      return reject(valid.error().message);
    }
    // The old database's -wal and -shm are still beside the new file, and closing the old
    // connections removes them by name: anything else there would be lost, so refuse.
    if (auto suffix = file_.foreign_sidecar()) {
      return reject("the " + *suffix + " file beside the replaced database '" + path +
                    "' is not the one ordo opened (a replacement must be a single "
                    "file, as `ordo backup` writes); restart ordo to open it as it is");
    }
    spdlog::warn("the database file '{}' was replaced by a valid ordo database; switching to it",
                 path);
    detach_database();
  } else if (auto valid = file_.validate(candidate); !valid) {
    return reject(valid.error().message);
  }
  // SQLite leaves a moved database's -wal and -shm at the path on close (it will not delete
  // what may belong to the file now there), and the new file would read them as its own log.
  // They are the old database's, emptied by the checkpoint at detach: remove them, unless
  // another process still has the old database open; then wait for it to let go.
  if (file_.has_old_sidecars()) {
    if (file_.old_database_open_elsewhere()) {
      std::string why = "another process still has the replaced database '" + path +
                        "' open (it holds its -shm file); ordo switches to the new file once "
                        "that process closes it";
      log_file_problem(why);
      readers_->close_connections(
          make_failure(failure_kind::unavailable, "storage_unavailable", why));
      readers_->resume();
      return;
    }
    file_.remove_old_sidecars();
  }
  if (auto s = attach_database(candidate); !s) {
    log_file_problem("cannot open the replacement database '" + path + "': " + s.error().message);
    readers_->close_connections(make_failure(
        failure_kind::unavailable, "storage_unavailable",
        "the database file was replaced and the new one cannot be opened: " + s.error().message));
    readers_->resume();
    return;
  }
}

void stream_engine::detach_database() {
  complete_pending();
  readers_->pause();
  readers_->close_connections(make_failure(failure_kind::unavailable, "storage_switching",
                                           "the server is switching to a new database file; "
                                           "retry shortly"));
  // Everything the old WAL holds goes into the old file (gone, or moved elsewhere and then
  // complete), and the -wal is left empty. Readers are closed, so nothing holds it back.
  if (write_db_) {
    auto busy = write_db_->query_int64("PRAGMA wal_checkpoint(TRUNCATE)");
    if (!busy || busy->value_or(0) != 0) {
      spdlog::warn("the checkpoint of the replaced database was incomplete: {}",
                   busy ? "another process is reading it" : busy.error().message);
    }
  }
  syncer_->detach();
  // Statements before their connection.
  write_sql_.reset();
  write_statements_.reset();
  store_ = nullptr;
  tables_.reset();
  write_db_.reset();
  attached_ = false;
}

status stream_engine::attach_database(std::optional<sqlite::file_identity> adopting) {
  const std::string& path = file_.path();
  auto opened = sqlite::open_write_connection(options_.database);
  if (!opened) return std::move(opened).error();
  // On the heap from the start: the prepared tables refer to it.
  auto db = std::make_unique<sqlite::connection>(std::move(*opened));
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return make_failure(failure_kind::unavailable, "storage_unavailable",
                        "cannot stat the database file '" + path + "'");
  }
  if (adopting && !adopting->same_file(st)) {
    return make_failure(failure_kind::unavailable, "storage_unavailable",
                        "the file changed again while it was being opened");
  }
  auto restored = sqlite::renew_epoch_if_restored(*db);
  if (!restored) return std::move(restored).error();
  if (*restored) {
    spdlog::warn(
        "database restored from a backup taken at {}: it gets a new epoch, so clients "
        "holding offsets from before re-read from the start",
        **restored);
  } else if (adopting) {
    // Offsets issued from the old file must not be taken for positions in this one.
    if (auto s = sqlite::renew_database_epoch(*db); !s) return s;
  }
  auto epoch = sqlite::load_or_create_database_epoch(*db);
  if (!epoch) return std::move(epoch).error();
  auto tables = sqlite::stream_tables::prepare(*db);
  if (!tables) return std::move(tables).error();
  auto streams = tables->load_streams();
  if (!streams) return std::move(streams).error();
  // --sync full in WAL mode: commits return unflushed and the syncer flushes the -wal after
  // them, on the writer's thread or its own (wal_syncer.hpp); migrations and the epoch above
  // were committed with a full sync.
  auto journal = db->query_text("PRAGMA journal_mode");
  if (!journal) return std::move(journal).error();
  bool pipelined = options_.database.sync == sqlite::sync_mode::full && *journal == "wal";
  if (pipelined) {
    if (auto s = db->exec("PRAGMA synchronous=NORMAL"); !s) return s;
  }
  std::uint64_t generation = generation_ + 1;
  readers_->pause();  // no-op unless the readers were let go on refusing while detached
  if (auto s = readers_->open_connections(options_.database, generation, *epoch); !s) {
    readers_->close_connections(s.error());
    return s;
  }

  // Nothing fails from here on: switch.
  write_db_ = std::move(db);
  tables_ = std::make_unique<sqlite::stream_tables>(std::move(*tables));
  store_ = tables_.get();
  write_statements_ = std::make_unique<sqlite::statement_cache>(*write_db_);
  write_sql_ = std::make_unique<sqlite::statement_cache_sql>(*write_statements_);
  database_epoch_ = *epoch;
  generation_ = generation;
  file_.opened(st);
  attached_ = true;
  if (pipelined) syncer_->attach(path + "-wal");
  auto [by_id, by_path] = build_registry(*streams);
  record_map old;
  std::function<void()> hook;
  {
    mutex_lock lock(registry_mu_);
    old = std::exchange(by_id_, std::move(by_id));
    by_path_ = std::move(by_path);
    hook = adopted_hook_;
  }
  // Live readers of the old records end; their clients resume against the new file, where
  // the new epoch answers their old offsets with 410 and a re-read.
  for (auto& [id, record] : old)
    record->publish_lifecycle(stream_lifecycle::replaced);
  readers_->resume();
  file_lost_ = false;
  poisoned_ = false;
  purge_pending_ = true;
  last_file_problem_.clear();
  if (adopting) {
    spdlog::warn(
        "switched to the replacement database '{}': streams={} database_epoch={:016x}; clients "
        "resuming with offsets from the old file get 410 and re-read",
        path, streams->size(), database_epoch_.load());
    if (hook) hook();
  } else {
    spdlog::info("storage open path={} streams={} database_epoch={:016x}", path, streams->size(),
                 database_epoch_.load());
  }
  return ok_v;
}

}  // namespace ordo
