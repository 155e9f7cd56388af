#include "storage/sqlite/stream_tables.hpp"

#include <algorithm>
#include <limits>
#include <random>

#include <spdlog/spdlog.h>

namespace ordo::sqlite {

namespace {

// A stream's messages after ?2 up to ?3 in seq order: first those already moved into
// `messages`, then those still in the append log. One statement, so one snapshot: a merge
// between two statements could move a message out of the second's sight. For one stream the
// log is in seq order, and all of it is above what `messages` holds, so the concatenation is in
// order (read_range checks). The log is scanned only when `messages` ran out before the range
// or the byte limit did.
constexpr std::string_view k_read_messages =
    "SELECT seq, data FROM messages WHERE stream_id = ?1 AND seq > ?2 AND seq <= ?3 "
    "UNION ALL "
    "SELECT seq, data FROM recent_messages WHERE stream_id = ?1 AND seq > ?2 AND seq <= ?3";

constexpr std::string_view k_stream_columns =
    "id, path, state, content_type, incarnation, created_at_ms, ttl_seconds, expires_at_ms, "
    "last_access_ms, closed, closed_by_producer, closed_by_epoch, closed_by_seq, "
    "last_stream_seq, fork_source_id, base_seq, fork_sub_offset, pruned_upto";

// A stream row; a state the schema's CHECK would refuse (a file changed outside ordo) is
// storage_corrupt, not a value of no enumerator.
result<stream_row> read_stream_row(const statement& s) {
  stream_row r;
  r.id = column_stream_id(s, 0);
  r.path = s.column_is_null(1) ? std::string() : std::string(s.column_text(1));
  const std::int64_t state = s.column_int64(2);
  switch (state) {
    case static_cast<int>(stream_row_state::live):
    case static_cast<int>(stream_row_state::soft_deleted):
    case static_cast<int>(stream_row_state::purging):
      r.state = static_cast<stream_row_state>(state);
      break;
    default:
      return make_failure(failure_kind::internal, std::string(k_storage_corrupt),
                          "streams.state of stream " + std::to_string(r.id.value()) + " holds " +
                              std::to_string(state) +
                              ", which is not 0, 1 or 2 (the database was changed outside ordo)");
  }
  r.content_type = std::string(s.column_text(3));
  r.incarnation = static_cast<std::uint64_t>(s.column_int64(4));
  r.created_at_ms = s.column_int64(5);
  r.ttl_seconds = s.column_optional_int64(6);
  r.expires_at_ms = s.column_optional_int64(7);
  r.last_access_ms = s.column_int64(8);
  r.closed = s.column_int64(9) != 0;
  r.closed_by_producer = s.column_optional_text(10);
  r.closed_by_epoch = s.column_optional_int64(11);
  r.closed_by_seq = s.column_optional_int64(12);
  r.last_stream_seq = s.column_optional_text(13);
  if (!s.column_is_null(14)) r.fork_source_id = column_stream_id(s, 14);
  r.base_seq = column_position(s, 15);
  r.fork_sub_offset = static_cast<std::uint64_t>(s.column_int64(16));
  r.pruned_upto = column_position(s, 17);
  return r;
}

// Runs a prepared statement that yields at most one stream row.
result<std::optional<stream_row>> one_stream(statement& s) {
  auto row = s.step();
  std::optional<stream_row> out;
  if (row && *row) {
    auto read = read_stream_row(s);
    if (!read) {
      s.reset();
      return std::move(read).error();
    }
    out = std::move(*read);
  }
  s.reset();
  if (!row) return std::move(row).error();
  return out;
}

status run_and_reset(statement& s) {
  auto r = s.run();
  s.reset();
  return r;
}

result<std::vector<message_row>> read_range(statement& s, stream_id stream, stream_position after,
                                            stream_position upto, std::size_t max_bytes) {
  bind_stream_id(s, 1, stream);
  bind_position(s, 2, after);
  bind_position(s, 3, upto);
  std::vector<message_row> out;
  std::size_t bytes = 0;
  for (;;) {
    auto row = s.step();
    if (!row) {
      s.reset();
      return std::move(row).error();
    }
    if (!*row) break;
    message_row m{column_position(s, 0), std::string(s.column_blob(1))};
    if (!out.empty() && m.seq <= out.back().seq) {
      s.reset();
      return make_failure(failure_kind::internal, "stream_data_out_of_order",
                          "stream " + std::to_string(stream.value()) + " has position " +
                              std::to_string(m.seq.value()) + " stored after position " +
                              std::to_string(out.back().seq.value()));
    }
    bytes += m.data.size();
    out.push_back(std::move(m));
    // Always return at least one message, even one larger than max_bytes.
    if (bytes >= max_bytes) break;
  }
  s.reset();
  return out;
}

// Past every position a stream can have: delete_logged() up to here deletes all of a stream's
// log (the largest integer SQLite stores, so it binds as itself).
constexpr stream_position k_every_position{
    static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())};

std::int64_t random_nonzero_int64() {
  std::random_device rd;
  std::uint64_t v = 0;
  while (v == 0)
    v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  return static_cast<std::int64_t>(v);
}

}  // namespace

result<std::uint64_t> load_or_create_database_epoch(connection& db) {
  auto existing = db.query_text("SELECT value FROM meta WHERE key = 'database_epoch'");
  if (!existing) return std::move(existing).error();
  if (*existing) return static_cast<std::uint64_t>(std::stoull(**existing, nullptr, 16));
  std::uint64_t epoch = static_cast<std::uint64_t>(random_nonzero_int64());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(epoch));
  auto insert = db.prepare("INSERT INTO meta (key, value) VALUES ('database_epoch', ?)");
  if (!insert) return std::move(insert).error();
  insert->bind_text(1, hex);
  if (auto s = insert->run(); !s) return std::move(s).error();
  return epoch;
}

status renew_database_epoch(connection& db) {
  std::uint64_t epoch = static_cast<std::uint64_t>(random_nonzero_int64());
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(epoch));
  auto set = db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('database_epoch', ?)");
  if (!set) return std::move(set).error();
  set->bind_text(1, hex);
  return set->run();
}

result<std::optional<std::string>> renew_epoch_if_restored(connection& db) {
  auto marker = db.query_text("SELECT value FROM meta WHERE key = '" +
                              std::string(k_meta_restored_backup) + "'");
  if (!marker) return std::move(marker).error();
  if (!*marker) return std::optional<std::string>();
  if (auto s = db.exec("BEGIN IMMEDIATE"); !s) return std::move(s).error();
  auto fail = [&](failure f) -> result<std::optional<std::string>> {
    (void)db.exec("ROLLBACK");
    return f;
  };
  if (auto s = renew_database_epoch(db); !s) return fail(std::move(s).error());
  if (auto s =
          db.exec("DELETE FROM meta WHERE key = '" + std::string(k_meta_restored_backup) + "'");
      !s) {
    return fail(std::move(s).error());
  }
  if (auto s = db.exec("COMMIT"); !s) return fail(std::move(s).error());
  return *marker;
}

result<stream_tables> stream_tables::prepare(connection& db) {
  stream_tables t;
  t.db_ = &db;
  struct entry {
    statement* target;
    std::string sql;
  };
  const std::string cols(k_stream_columns);
  const entry entries[] = {
      {&t.begin_, "BEGIN IMMEDIATE"},
      {&t.commit_, "COMMIT"},
      {&t.rollback_, "ROLLBACK"},
      {&t.savepoint_, "SAVEPOINT job"},
      {&t.release_, "RELEASE job"},
      {&t.rollback_to_, "ROLLBACK TO job"},
      {&t.find_by_path_, "SELECT " + cols + " FROM streams WHERE path = ?"},
      {&t.find_by_id_, "SELECT " + cols + " FROM streams WHERE id = ?"},
      {&t.tail_, "SELECT MAX(seq) FROM messages WHERE stream_id = ?"},
      {&t.insert_stream_,
       "INSERT INTO streams (path, state, content_type, incarnation, created_at_ms, ttl_seconds, "
       "expires_at_ms, last_access_ms, closed, closed_by_producer, closed_by_epoch, "
       "closed_by_seq, last_stream_seq, fork_source_id, base_seq, fork_sub_offset) "
       "VALUES (?, 0, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, ?, ?)"},
      {&t.insert_message_, "INSERT INTO recent_messages (stream_id, seq, data) VALUES (?, ?, ?)"},
      {&t.insert_direct_, "INSERT INTO messages (stream_id, seq, data) VALUES (?, ?, ?)"},
      {&t.read_messages_, std::string(k_read_messages)},
      {&t.logged_tails_,
       "SELECT stream_id, MAX(seq), COUNT(*), SUM(LENGTH(data)) FROM recent_messages "
       "GROUP BY stream_id"},
      {&t.logged_tail_, "SELECT MAX(seq) FROM recent_messages WHERE stream_id = ?"},
      // In the order of `messages`' key: each stream's last leaf is written once per merge.
      // A prune or purge deletes from the log what it deletes from `messages`.
      {&t.merge_insert_,
       "INSERT INTO messages (stream_id, seq, data) "
       "SELECT stream_id, seq, data FROM recent_messages ORDER BY stream_id, seq"},
      {&t.merge_delete_, "DELETE FROM recent_messages"},
      {&t.prune_logged_,
       "DELETE FROM recent_messages WHERE stream_id = ? AND seq <= ? RETURNING LENGTH(data)"},
      {&t.find_producer_,
       "SELECT epoch, last_seq FROM producers WHERE stream_id = ? AND producer_id = ?"},
      {&t.upsert_producer_,
       "INSERT INTO producers (stream_id, producer_id, epoch, last_seq, updated_at_ms) "
       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (stream_id, producer_id) DO UPDATE SET "
       "epoch = excluded.epoch, last_seq = excluded.last_seq, "
       "updated_at_ms = excluded.updated_at_ms"},
      {&t.set_closed_,
       "UPDATE streams SET closed = 1, closed_by_producer = ?, closed_by_epoch = ?, "
       "closed_by_seq = ? WHERE id = ?"},
      {&t.set_last_stream_seq_, "UPDATE streams SET last_stream_seq = ? WHERE id = ?"},
      {&t.set_last_access_,
       "UPDATE streams SET last_access_ms = MAX(last_access_ms, ?) WHERE id = ?"},
      {&t.set_soft_deleted_, "UPDATE streams SET state = 1 WHERE id = ? AND state = 0"},
      {&t.mark_purging_, "UPDATE streams SET state = 2, path = NULL WHERE id = ?"},
      {&t.has_children_,
       "SELECT EXISTS (SELECT 1 FROM streams WHERE fork_source_id = ? AND state IN (0, 1))"},
      {&t.purge_messages_,
       "DELETE FROM messages WHERE stream_id = ?1 AND seq IN "
       "(SELECT seq FROM messages WHERE stream_id = ?1 ORDER BY seq LIMIT ?2)"},
      {&t.delete_producers_, "DELETE FROM producers WHERE stream_id = ?"},
      {&t.delete_stream_, "DELETE FROM streams WHERE id = ?"},
      {&t.purging_streams_, "SELECT id FROM streams WHERE state = 2 ORDER BY id"},
      {&t.prune_messages_, "DELETE FROM messages WHERE stream_id = ? AND seq <= ?"},
      {&t.set_pruned_, "UPDATE streams SET pruned_upto = MAX(pruned_upto, ?) WHERE id = ?"},
  };
  for (const entry& e : entries) {
    auto s = db.prepare(e.sql);
    if (!s) return std::move(s).error();
    *e.target = std::move(*s);
  }
  if (auto s = t.reload_log(); !s) return std::move(s).error();
  return t;
}

status stream_tables::reload_log() {
  log_known_ = false;
  log_tails_.clear();
  log_rows_ = 0;
  log_bytes_ = 0;
  auto read = for_each_row(logged_tails_, [&](statement& r) {
    log_tails_[column_stream_id(r, 0)] = column_position(r, 1);
    log_rows_ += r.column_int64(2);
    log_bytes_ += static_cast<std::size_t>(r.column_int64(3));
  });
  if (!read) return read;
  log_known_ = true;
  return ok_v;
}

void stream_tables::after_rollback() {
  // What the log holds is whatever the rollback left: ask the file. Until that works, tail()
  // asks it for every stream.
  if (auto s = reload_log(); !s)
    spdlog::warn("could not read the append log: {}", s.error().message);
}

status stream_tables::merge_log() {
  if (auto s = run_and_reset(merge_insert_); !s) return s;
  if (auto s = run_and_reset(merge_delete_); !s) return s;
  log_tails_.clear();
  log_rows_ = 0;
  log_bytes_ = 0;
  log_known_ = true;
  return ok_v;
}

result<std::vector<loaded_stream>> stream_tables::load_streams() {
  auto select = db_->prepare("SELECT " + std::string(k_stream_columns) +
                             " FROM streams WHERE state IN (0, 1) ORDER BY id");
  if (!select) return std::move(select).error();
  std::vector<loaded_stream> out;
  for (;;) {
    auto row = select->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    auto read = read_stream_row(*select);
    if (!read) return std::move(read).error();
    loaded_stream s{std::move(*read), stream_position::start()};
    auto t = tail(s.row);
    if (!t) return std::move(t).error();
    s.tail = *t;
    out.push_back(std::move(s));
  }
  return out;
}

status stream_tables::begin_immediate() {
  return run_and_reset(begin_);
}
status stream_tables::commit() {
  return run_and_reset(commit_);
}
status stream_tables::rollback() {
  auto s = run_and_reset(rollback_);
  after_rollback();
  return s;
}
status stream_tables::savepoint() {
  return run_and_reset(savepoint_);
}
status stream_tables::release_savepoint() {
  return run_and_reset(release_);
}
status stream_tables::rollback_to_savepoint() {
  auto s = run_and_reset(rollback_to_);
  after_rollback();
  return s;
}

result<std::optional<stream_row>> stream_tables::find_by_path(std::string_view path) {
  find_by_path_.bind_text(1, path);
  return one_stream(find_by_path_);
}

result<std::optional<stream_row>> stream_tables::find_by_id(stream_id id) {
  bind_stream_id(find_by_id_, 1, id);
  return one_stream(find_by_id_);
}

result<stream_position> stream_tail(statement_cache& statements, stream_id stream) {
  auto s = statements.get(
      "SELECT MAX(COALESCE((SELECT MAX(seq) FROM messages WHERE stream_id = ?1), 0), "
      "COALESCE((SELECT MAX(seq) FROM recent_messages WHERE stream_id = ?1), 0), "
      "base_seq, pruned_upto) FROM streams WHERE id = ?1");
  if (!s) return std::move(s).error();
  statement_use use(*s);
  bind_stream_id(*use, 1, stream);
  auto row = use->step();
  if (!row) return std::move(row).error();
  return *row ? column_position(*use, 0) : stream_position::start();
}

result<stream_position> stream_tables::tail(const stream_row& stream) {
  bind_stream_id(tail_, 1, stream.id);
  auto row = tail_.step();
  stream_position out = std::max(stream.base_seq, stream.pruned_upto);
  if (row && *row && !tail_.column_is_null(0)) out = std::max(out, column_position(tail_, 0));
  tail_.reset();
  if (!row) return std::move(row).error();
  if (log_known_) {
    if (auto it = log_tails_.find(stream.id); it != log_tails_.end())
      out = std::max(out, it->second);
    return out;
  }
  bind_stream_id(logged_tail_, 1, stream.id);
  auto logged = logged_tail_.step();
  if (logged && *logged && !logged_tail_.column_is_null(0)) {
    out = std::max(out, column_position(logged_tail_, 0));
  }
  logged_tail_.reset();
  if (!logged) return std::move(logged).error();
  return out;
}

result<stream_id> stream_tables::insert_stream(const stream_row& r) {
  statement& s = insert_stream_;
  s.bind_text(1, r.path);
  s.bind_text(2, r.content_type);
  s.bind_int64(3, static_cast<std::int64_t>(r.incarnation));
  s.bind_int64(4, r.created_at_ms);
  s.bind_optional_int64(5, r.ttl_seconds);
  s.bind_optional_int64(6, r.expires_at_ms);
  s.bind_int64(7, r.last_access_ms);
  s.bind_int64(8, r.closed ? 1 : 0);
  if (r.fork_source_id) {
    bind_stream_id(s, 9, *r.fork_source_id);
  } else {
    s.bind_null(9);
  }
  bind_position(s, 10, r.base_seq);
  s.bind_int64(11, static_cast<std::int64_t>(r.fork_sub_offset));
  if (auto st = run_and_reset(s); !st) return std::move(st).error();
  return stream_id{db_->last_insert_rowid()};
}

status stream_tables::insert_message(stream_id stream, stream_position seq, std::string_view data) {
  // A message of half a page or more writes pages of its own wherever it goes, and moving it
  // later would write it twice: it goes straight into `messages`, unless the log still holds
  // some of its stream (the log's part of a stream must stay above the table's).
  bool direct = data.size() >= k_direct_message_bytes && log_known_ && !log_tails_.contains(stream);
  statement& insert = direct ? insert_direct_ : insert_message_;
  bind_stream_id(insert, 1, stream);
  bind_position(insert, 2, seq);
  insert.bind_blob(3, data);
  if (auto s = run_and_reset(insert); !s) return s;
  if (direct) return ok_v;
  stream_position& logged = log_tails_[stream];
  logged = std::max(logged, seq);
  ++log_rows_;
  log_bytes_ += data.size();
  return ok_v;
}

result<std::vector<message_row>> stream_tables::read_messages(stream_id stream,
                                                              stream_position after,
                                                              stream_position upto,
                                                              std::size_t max_bytes) {
  return read_range(read_messages_, stream, after, upto, max_bytes);
}

result<std::optional<producer_row>> stream_tables::find_producer(stream_id stream,
                                                                 std::string_view producer_id) {
  bind_stream_id(find_producer_, 1, stream);
  find_producer_.bind_text(2, producer_id);
  auto row = find_producer_.step();
  std::optional<producer_row> out;
  if (row && *row)
    out = producer_row{find_producer_.column_int64(0), find_producer_.column_int64(1)};
  find_producer_.reset();
  if (!row) return std::move(row).error();
  return out;
}

status stream_tables::upsert_producer(stream_id stream, std::string_view producer_id,
                                      std::int64_t epoch, std::int64_t last_seq,
                                      std::int64_t now_ms) {
  bind_stream_id(upsert_producer_, 1, stream);
  upsert_producer_.bind_text(2, producer_id);
  upsert_producer_.bind_int64(3, epoch);
  upsert_producer_.bind_int64(4, last_seq);
  upsert_producer_.bind_int64(5, now_ms);
  return run_and_reset(upsert_producer_);
}

status stream_tables::set_closed(stream_id stream, const std::optional<closed_by>& by) {
  if (by) {
    set_closed_.bind_text(1, by->producer_id);
    set_closed_.bind_int64(2, by->epoch);
    set_closed_.bind_int64(3, by->seq);
  } else {
    set_closed_.bind_null(1);
    set_closed_.bind_null(2);
    set_closed_.bind_null(3);
  }
  bind_stream_id(set_closed_, 4, stream);
  return run_and_reset(set_closed_);
}

status stream_tables::set_last_stream_seq(stream_id stream, std::string_view stream_seq) {
  set_last_stream_seq_.bind_text(1, stream_seq);
  bind_stream_id(set_last_stream_seq_, 2, stream);
  return run_and_reset(set_last_stream_seq_);
}

status stream_tables::set_last_access(stream_id stream, std::int64_t last_access_ms) {
  set_last_access_.bind_int64(1, last_access_ms);
  bind_stream_id(set_last_access_, 2, stream);
  return run_and_reset(set_last_access_);
}

status stream_tables::set_soft_deleted(stream_id stream) {
  bind_stream_id(set_soft_deleted_, 1, stream);
  return run_and_reset(set_soft_deleted_);
}

status stream_tables::mark_purging(stream_id stream) {
  bind_stream_id(mark_purging_, 1, stream);
  if (auto s = run_and_reset(mark_purging_); !s) return s;
  return delete_logged(stream, k_every_position);
}

status stream_tables::delete_logged(stream_id stream, stream_position upto) {
  if (log_known_ && !log_tails_.contains(stream)) return ok_v;
  // Scans the log (it has no index), which holds at most one merge's worth of rows.
  bind_stream_id(prune_logged_, 1, stream);
  bind_position(prune_logged_, 2, upto);
  std::int64_t rows = 0;
  std::size_t bytes = 0;
  auto deleted = for_each_row(prune_logged_, [&](statement& r) {
    ++rows;
    bytes += static_cast<std::size_t>(r.column_int64(0));
  });
  if (!deleted) return deleted;
  log_rows_ -= rows;
  log_bytes_ -= std::min(log_bytes_, bytes);
  return ok_v;
}

result<bool> stream_tables::has_children(stream_id stream) {
  bind_stream_id(has_children_, 1, stream);
  auto row = has_children_.step();
  bool out = row && *row && has_children_.column_int64(0) != 0;
  has_children_.reset();
  if (!row) return std::move(row).error();
  return out;
}

result<int> stream_tables::purge_messages(stream_id stream, int limit) {
  bind_stream_id(purge_messages_, 1, stream);
  purge_messages_.bind_int64(2, limit);
  if (auto s = run_and_reset(purge_messages_); !s) return std::move(s).error();
  return db_->changes();
}

status stream_tables::delete_stream(stream_id stream) {
  if (auto s = delete_logged(stream, k_every_position); !s) return s;
  bind_stream_id(delete_producers_, 1, stream);
  if (auto s = run_and_reset(delete_producers_); !s) return s;
  bind_stream_id(delete_stream_, 1, stream);
  return run_and_reset(delete_stream_);
}

result<std::vector<stream_id>> stream_tables::purging_streams() {
  std::vector<stream_id> out;
  auto read =
      for_each_row(purging_streams_, [&](statement& r) { out.push_back(column_stream_id(r, 0)); });
  if (!read) return std::move(read).error();
  return out;
}

status stream_tables::prune_upto(stream_id stream, stream_position upto) {
  bind_stream_id(prune_messages_, 1, stream);
  bind_position(prune_messages_, 2, upto);
  if (auto s = run_and_reset(prune_messages_); !s) return s;
  if (auto s = delete_logged(stream, upto); !s) return s;
  bind_position(set_pruned_, 1, upto);
  bind_stream_id(set_pruned_, 2, stream);
  return run_and_reset(set_pruned_);
}

result<message_reader> message_reader::prepare(connection& db) {
  auto s = db.prepare(std::string(k_read_messages));
  if (!s) return std::move(s).error();
  auto pruned = db.prepare("SELECT pruned_upto FROM streams WHERE id = ?");
  if (!pruned) return std::move(pruned).error();
  message_reader r;
  r.read_ = std::move(*s);
  r.pruned_upto_ = std::move(*pruned);
  return r;
}

result<stream_position> message_reader::pruned_upto(stream_id stream) {
  bind_stream_id(pruned_upto_, 1, stream);
  auto row = pruned_upto_.step();
  stream_position out = row && *row ? column_position(pruned_upto_, 0) : stream_position::start();
  pruned_upto_.reset();
  if (!row) return std::move(row).error();
  return out;
}

result<std::vector<message_row>> message_reader::read(stream_id stream, stream_position after,
                                                      stream_position upto, std::size_t max_bytes) {
  return read_range(read_, stream, after, upto, max_bytes);
}

}  // namespace ordo::sqlite
