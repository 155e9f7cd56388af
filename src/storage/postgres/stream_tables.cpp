#include "storage/postgres/stream_tables.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <random>
#include <string>

namespace ordo::postgres {

namespace {

// The columns of a stream_row, in the order row_at() reads them; then tail_seq.
constexpr std::string_view k_stream_columns =
    "id, path, state, content_type, incarnation, created_at_ms, ttl_seconds, expires_at_ms, "
    "last_access_ms, closed, closed_by_producer, closed_by_epoch, closed_by_seq, "
    "last_stream_seq, fork_source_id, base_seq, fork_sub_offset, pruned_upto, tail_seq";

// Messages inserted by one statement: PostgreSQL takes at most 65,535 parameters, two a message.
constexpr std::size_t k_messages_per_insert = 1000;
// Counters and producer states written by one statement of the write-behind (8 and 5 parameters
// each).
constexpr std::size_t k_rows_per_write = 2000;
// Messages fetched by one statement of read_messages().
constexpr int k_read_page = 1000;
// The first key of the advisory locks lock_streams() takes on paths ("ordo" in ASCII): the
// two-key space, apart from the one-key locks of leadership and migrations.
constexpr std::int64_t k_path_lock_space = 0x6f72646f;
// How many times a node asks for the database epoch before giving up (a second ask always sees
// the row another node inserted first).
constexpr int k_epoch_attempts = 3;

param id_param(stream_id id) {
  return param::integer(id.value());
}
param position_param(stream_position p) {
  return param::integer(static_cast<std::int64_t>(p.value()));
}
// A bigint[] literal of `ids`: {1,2,3}.
param id_array(const std::vector<stream_id>& ids) {
  std::string out = "{";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i].value());
  }
  out += '}';
  return param(std::move(out));
}
// A text[] literal of `values`: {"a","b\\\"c"}.
param text_array(const std::vector<std::string>& values) {
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return param(std::move(out));
}
stream_position position_at(const rows& r, int row, int column) {
  return stream_position{static_cast<std::uint64_t>(r.int64(row, column))};
}

stream_row row_at(const rows& r, int i) {
  stream_row row;
  row.id = stream_id{r.int64(i, 0)};
  row.path = r.is_null(i, 1) ? std::string() : std::string(r.text(i, 1));
  row.state = static_cast<stream_row_state>(r.int64(i, 2));
  row.content_type = std::string(r.text(i, 3));
  row.incarnation = static_cast<std::uint64_t>(r.int64(i, 4));
  row.created_at_ms = r.int64(i, 5);
  row.ttl_seconds = r.optional_int64(i, 6);
  row.expires_at_ms = r.optional_int64(i, 7);
  row.last_access_ms = r.int64(i, 8);
  row.closed = r.text(i, 9) == "t";
  row.closed_by_producer = r.optional_text(i, 10);
  row.closed_by_epoch = r.optional_int64(i, 11);
  row.closed_by_seq = r.optional_int64(i, 12);
  row.last_stream_seq = r.optional_text(i, 13);
  if (auto source = r.optional_int64(i, 14)) row.fork_source_id = stream_id{*source};
  row.base_seq = position_at(r, i, 15);
  row.fork_sub_offset = static_cast<std::uint64_t>(r.int64(i, 16));
  row.pruned_upto = position_at(r, i, 17);
  return row;
}

// Every row of a SELECT of k_stream_columns, with its tail.
std::vector<loaded_stream> loaded_at(const rows& r) {
  std::vector<loaded_stream> out;
  out.reserve(static_cast<std::size_t>(r.size()));
  for (int i = 0; i < r.size(); ++i)
    out.push_back({row_at(r, i), position_at(r, i, 18)});
  return out;
}

param optional_integer(const std::optional<std::int64_t>& v) {
  return v ? param::integer(*v) : param();
}

std::int64_t random_nonzero_int64() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  std::int64_t v = 0;
  while (v == 0)
    v = static_cast<std::int64_t>(rng());
  return v;
}

}  // namespace

result<std::uint64_t> load_or_create_database_epoch(connection& db) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(random_nonzero_int64()));
  // The first node to get here chooses; every other one reads its choice. A node whose insert
  // met another's row that its statement's snapshot predates reads nothing: it asks again.
  for (int attempt = 0; attempt < k_epoch_attempts; ++attempt) {
    auto r = db.query(
        "WITH chosen AS (INSERT INTO meta (key, value) VALUES ('database_epoch', $1) "
        "  ON CONFLICT (key) DO NOTHING RETURNING value) "
        "SELECT value FROM chosen UNION ALL "
        "SELECT value FROM meta WHERE key = 'database_epoch' "
        "  AND NOT EXISTS (SELECT 1 FROM chosen)",
        {std::string(hex)});
    if (!r) return std::move(r).error();
    if (r->size() == 1) {
      return static_cast<std::uint64_t>(std::stoull(std::string(r->text(0, 0)), nullptr, 16));
    }
  }
  return make_failure(failure_kind::internal, "epoch_unavailable",
                      "the database epoch could not be read or created");
}

// ---- transactions and the write-behind --------------------------------------------------------

status stream_tables::begin() {
  forget_all();
  messages_.clear();
  producers_.clear();
  savepoint_ = job_savepoint::none;
  status s = db_->exec("BEGIN ISOLATION LEVEL READ COMMITTED");
  in_transaction_ = static_cast<bool>(s);
  return s;
}

status stream_tables::commit() {
  status s = write_held();
  in_transaction_ = false;
  forget_all();
  producers_.clear();
  messages_.clear();
  if (!s) return s;
  return db_->commit();
}

status stream_tables::rollback() {
  in_transaction_ = false;
  forget_all();
  producers_.clear();
  messages_.clear();
  savepoint_ = job_savepoint::none;
  return db_->exec("ROLLBACK");
}

status stream_tables::savepoint() {
  if (auto s = write_held(); !s) return s;
  if (auto s = db_->exec("SAVEPOINT job"); !s) return s;
  savepoint_ = job_savepoint::sent;
  return ok_v;
}

status stream_tables::savepoint_for_appends() {
  if (!in_transaction_) return savepoint();
  savepoint_ = job_savepoint::held;
  savepoint_messages_ = messages_.size();
  undo_rows_.clear();
  undo_producers_.clear();
  return ok_v;
}

status stream_tables::release_savepoint() {
  job_savepoint was = std::exchange(savepoint_, job_savepoint::none);
  undo_rows_.clear();
  undo_producers_.clear();
  if (was != job_savepoint::sent) return ok_v;
  return db_->exec("RELEASE SAVEPOINT job");
}

status stream_tables::rollback_to_savepoint() {
  if (savepoint_ == job_savepoint::held) {
    // Newest first: a row remembered twice ends as it was before the job.
    for (auto it = undo_rows_.rbegin(); it != undo_rows_.rend(); ++it)
      rows_[it->row.id.value()] = *it;
    for (auto it = undo_producers_.rbegin(); it != undo_producers_.rend(); ++it) {
      if (it->second) {
        producers_[it->first] = *it->second;
      } else {
        producers_.erase(it->first);
      }
    }
    messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(savepoint_messages_),
                    messages_.end());
    undo_rows_.clear();
    undo_producers_.clear();
    return ok_v;
  }
  if (savepoint_ != job_savepoint::sent) return ok_v;
  // The job wrote directly (nothing was held when it started): what it did may be in the
  // cached rows, so they are read again. The savepoint stays for the engine to release.
  forget_all();
  producers_.clear();
  return db_->exec("ROLLBACK TO SAVEPOINT job");
}

status stream_tables::flush() {
  return go_direct();
}

void stream_tables::cache(const stream_row& row, stream_position tail) {
  if (!in_transaction_) return;  // the lock ended with the statement
  forget(row.id);
  rows_[row.id.value()] = cached_stream{row, tail, tail, false};
  if (row.state != stream_row_state::purging) paths_[row.path] = row.id.value();
}

void stream_tables::forget(stream_id id) {
  auto it = rows_.find(id.value());
  if (it == rows_.end()) return;
  assert(!it->second.dirty && "held changes must be written before the row is forgotten");
  auto p = paths_.find(it->second.row.path);
  if (p != paths_.end() && p->second == id.value()) paths_.erase(p);
  rows_.erase(it);
}

void stream_tables::forget_all() {
  rows_.clear();
  paths_.clear();
}

stream_tables::cached_stream* stream_tables::cached(stream_id id) {
  auto it = rows_.find(id.value());
  return it == rows_.end() ? nullptr : &it->second;
}

stream_tables::cached_stream* stream_tables::held_row(stream_id id) {
  if (savepoint_ != job_savepoint::held) return nullptr;
  return cached(id);
}

void stream_tables::remember(const cached_stream& s) {
  undo_rows_.push_back(s);
}

void stream_tables::remember(const producer_key& key) {
  auto it = producers_.find(key);
  undo_producers_.emplace_back(
      key, it == producers_.end() ? std::nullopt : std::optional<cached_producer>(it->second));
}

status stream_tables::go_direct() {
  if (savepoint_ == job_savepoint::held) {
    if (!undo_rows_.empty() || !undo_producers_.empty() ||
        messages_.size() != savepoint_messages_) {
      return make_failure(failure_kind::internal, "held_job_went_direct",
                          "a job that held back its writes ran a statement that needs them sent "
                          "(the job is not one that only appends)");
    }
    if (auto s = write_held(); !s) return s;
    if (auto s = db_->exec("SAVEPOINT job"); !s) return s;
    savepoint_ = job_savepoint::sent;
    return ok_v;
  }
  return write_held();
}

status stream_tables::write_held() {
  std::vector<cached_stream*> rows;
  for (auto& [id, s] : rows_)
    if (s.dirty) rows.push_back(&s);
  std::vector<std::pair<const producer_key*, cached_producer*>> producers;
  for (auto& [key, p] : producers_)
    if (p.dirty && p.value) producers.emplace_back(&key, &p);
  if (rows.empty() && producers.empty() && messages_.empty()) return ok_v;
  std::sort(rows.begin(), rows.end(),
            [](const cached_stream* a, const cached_stream* b) { return a->row.id < b->row.id; });

  // Each statement: up to k_rows_per_write counters, producers and messages (PostgreSQL takes at
  // most 65,535 parameters); usually the first is the only one.
  std::size_t r = 0, p = 0, m = 0;
  while (r < rows.size() || p < producers.size() || m < messages_.size()) {
    std::vector<param> params;
    auto next = [&](param v) {
      params.push_back(std::move(v));
      return "$" + std::to_string(params.size());
    };
    std::string sql;
    std::string select = "SELECT 0";
    const std::size_t rows_here = std::min(k_rows_per_write, rows.size() - r);
    if (rows_here > 0) {
      // The counter must be where this transaction left it in the database (stored_tail): it
      // is, since the row is locked; a mismatch means a writer that did not lock it.
      sql +=
          "moved AS (UPDATE streams AS s SET tail_seq = v.tail, closed = v.closed, "
          "closed_by_producer = v.by_producer, closed_by_epoch = v.by_epoch, closed_by_seq = "
          "v.by_seq, last_stream_seq = v.stream_seq FROM (VALUES ";
      for (std::size_t i = 0; i < rows_here; ++i) {
        const cached_stream& c = *rows[r + i];
        if (i) sql += ", ";
        sql += "(" + next(id_param(c.row.id)) + "::bigint, " + next(position_param(c.stored_tail)) +
               "::bigint, " + next(position_param(c.tail)) + "::bigint, " +
               next(param(c.row.closed ? "true" : "false")) + "::boolean, " +
               next(param(c.row.closed_by_producer)) + "::text, " +
               next(optional_integer(c.row.closed_by_epoch)) + "::bigint, " +
               next(optional_integer(c.row.closed_by_seq)) + "::bigint, " +
               next(param(c.row.last_stream_seq)) + "::text)";
      }
      sql +=
          ") AS v(id, stored, tail, closed, by_producer, by_epoch, by_seq, stream_seq) "
          "WHERE s.id = v.id AND s.tail_seq = v.stored RETURNING 1)";
      select = "SELECT (SELECT count(*) FROM moved)";
    }
    const std::size_t producers_here = std::min(k_rows_per_write, producers.size() - p);
    if (producers_here > 0) {
      if (!sql.empty()) sql += ", ";
      sql +=
          "admitted AS (INSERT INTO producers (stream_id, producer_id, epoch, last_seq, "
          "updated_at_ms) VALUES ";
      for (std::size_t i = 0; i < producers_here; ++i) {
        const auto& [key, c] = producers[p + i];
        if (i) sql += ", ";
        sql += "(" + next(param::integer(key->first)) + ", " + next(param(key->second)) + ", " +
               next(param::integer(c->value->epoch)) + ", " +
               next(param::integer(c->value->last_seq)) + ", " +
               next(param::integer(c->updated_at_ms)) + ")";
      }
      sql +=
          " ON CONFLICT (stream_id, producer_id) DO UPDATE SET epoch = EXCLUDED.epoch, "
          "last_seq = EXCLUDED.last_seq, updated_at_ms = EXCLUDED.updated_at_ms RETURNING 1)";
    }
    const std::size_t messages_here = std::min(k_messages_per_insert, messages_.size() - m);
    if (messages_here > 0) {
      if (!sql.empty()) sql += ", ";
      sql += "stored AS (INSERT INTO messages (stream_id, seq, data) VALUES ";
      for (std::size_t i = 0; i < messages_here; ++i) {
        const held_message& h = messages_[m + i];
        if (i) sql += ", ";
        sql += "(" + next(id_param(h.stream)) + ", " + next(position_param(h.seq)) + ", " +
               next(param::bytes(h.data)) + ")";
      }
      sql += " RETURNING 1)";
    }
    auto done = db_->query_int64("WITH " + sql + " " + select, params);
    if (!done) return std::move(done).error();
    if (rows_here > 0 && done->value_or(-1) != static_cast<std::int64_t>(rows_here)) {
      return make_failure(failure_kind::internal, "tail_moved",
                          "a stream's counter moved under this transaction's lock (a writer "
                          "appended without locking it)");
    }
    r += rows_here;
    p += producers_here;
    m += messages_here;
  }
  for (cached_stream* c : rows) {
    c->stored_tail = c->tail;
    c->dirty = false;
  }
  for (auto& [key, c] : producers)
    c->dirty = false;
  messages_.clear();
  return ok_v;
}

result<std::vector<loaded_stream>> stream_tables::load_streams() {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto r = db_->query("SELECT " + std::string(k_stream_columns) +
                      " FROM streams WHERE state IN (0, 1) ORDER BY id");
  if (!r) return std::move(r).error();
  return loaded_at(*r);
}

result<std::optional<stream_row>> stream_tables::find_by_path(std::string_view path) {
  // Not cached: nothing is held for it, and the database has it as it is.
  if (auto it = paths_.find(std::string(path)); it != paths_.end()) {
    return std::optional<stream_row>(rows_.at(it->second).row);
  }
  auto r = db_->query("SELECT " + std::string(k_stream_columns) + " FROM streams WHERE path = $1",
                      {std::string(path)});
  if (!r) return std::move(r).error();
  if (r->size() == 0) return std::optional<stream_row>();
  return std::optional<stream_row>(row_at(*r, 0));
}

result<std::optional<stream_row>> stream_tables::find_by_id(stream_id id) {
  if (const cached_stream* c = cached(id)) return std::optional<stream_row>(c->row);
  auto r = db_->query("SELECT " + std::string(k_stream_columns) + " FROM streams WHERE id = $1",
                      {id_param(id)});
  if (!r) return std::move(r).error();
  if (r->size() == 0) return std::optional<stream_row>();
  return std::optional<stream_row>(row_at(*r, 0));
}

result<std::optional<loaded_stream>> stream_tables::find_loaded(std::string_view path) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto r = db_->query("SELECT " + std::string(k_stream_columns) + " FROM streams WHERE path = $1",
                      {std::string(path)});
  if (!r) return std::move(r).error();
  if (r->size() == 0) return std::optional<loaded_stream>();
  return std::optional<loaded_stream>(loaded_stream{row_at(*r, 0), position_at(*r, 0, 18)});
}

result<std::vector<loaded_stream>> stream_tables::find_loaded(const std::vector<stream_id>& ids) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto r = db_->query("SELECT " + std::string(k_stream_columns) +
                          " FROM streams WHERE id = ANY($1::bigint[]) ORDER BY id",
                      {id_array(ids)});
  if (!r) return std::move(r).error();
  return loaded_at(*r);
}

result<stream_id> stream_tables::insert_stream(const stream_row& row) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto r = db_->query(
      "INSERT INTO streams (path, state, content_type, incarnation, created_at_ms, ttl_seconds, "
      "expires_at_ms, last_access_ms, closed, closed_by_producer, closed_by_epoch, "
      "closed_by_seq, last_stream_seq, fork_source_id, base_seq, fork_sub_offset, pruned_upto, "
      "tail_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, "
      "$17, $15) RETURNING id",
      {row.state == stream_row_state::purging ? param() : param(row.path),
       param::integer(static_cast<std::int64_t>(row.state)), param(row.content_type),
       param::integer(static_cast<std::int64_t>(row.incarnation)),
       param::integer(row.created_at_ms), optional_integer(row.ttl_seconds),
       optional_integer(row.expires_at_ms), param::integer(row.last_access_ms),
       param(row.closed ? "true" : "false"), param(row.closed_by_producer),
       optional_integer(row.closed_by_epoch), optional_integer(row.closed_by_seq),
       param(row.last_stream_seq), row.fork_source_id ? id_param(*row.fork_source_id) : param(),
       position_param(row.base_seq), param::integer(static_cast<std::int64_t>(row.fork_sub_offset)),
       position_param(row.pruned_upto)});
  if (!r) return std::move(r).error();
  return stream_id{r->int64(0, 0)};
}

result<std::vector<std::pair<stream_id, stream_position>>> stream_tables::lock_tails(
    std::vector<stream_id> streams) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  std::sort(streams.begin(), streams.end());
  streams.erase(std::unique(streams.begin(), streams.end()), streams.end());
  param ids = id_array(streams);
  // ORDER BY id with FOR UPDATE locks the rows in that order: every node takes them the same way.
  auto r = db_->query(
      "SELECT id, tail_seq FROM streams WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
      {ids});
  if (!r) return std::move(r).error();
  std::vector<std::pair<stream_id, stream_position>> out;
  out.reserve(static_cast<std::size_t>(r->size()));
  for (int i = 0; i < r->size(); ++i)
    out.emplace_back(stream_id{r->int64(i, 0)}, position_at(*r, i, 1));
  return out;
}

result<stream_position> stream_tables::append(stream_id stream, stream_position tail,
                                              std::span<const std::string_view> messages) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  forget(stream);
  const stream_position last{tail.value() + messages.size()};
  // The counter first: if it is not at `tail`, nothing is written.
  auto moved = db_->query(
      "UPDATE streams SET tail_seq = $3 WHERE id = $1 AND tail_seq = $2 RETURNING tail_seq",
      {id_param(stream), position_param(tail), position_param(last)});
  if (!moved) return std::move(moved).error();
  if (moved->size() != 1) {
    return make_failure(failure_kind::internal, "tail_moved",
                        "stream " + std::to_string(stream.value()) + ": the counter is not at " +
                            std::to_string(tail.value()) +
                            " (the writer appended without locking it)");
  }
  // One statement per k_messages_per_insert messages, not one per message: the stream id is $1,
  // then each message's position and bytes.
  std::uint64_t seq = tail.value();
  for (std::size_t from = 0; from < messages.size(); from += k_messages_per_insert) {
    const std::size_t n = std::min(k_messages_per_insert, messages.size() - from);
    std::string sql = "INSERT INTO messages (stream_id, seq, data) VALUES ";
    std::vector<param> params{id_param(stream)};
    params.reserve(1 + 2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      if (i) sql += ", ";
      sql += "($1, $" + std::to_string(params.size() + 1) + ", $" +
             std::to_string(params.size() + 2) + ")";
      params.push_back(position_param(stream_position{++seq}));
      params.push_back(param::bytes(messages[from + i]));
    }
    if (auto s = db_->query(sql, params); !s) return std::move(s).error();
  }
  return last;
}

result<stream_position> stream_tables::tail(stream_id stream) {
  if (const cached_stream* c = cached(stream)) return c->tail;
  auto t = db_->query_int64("SELECT tail_seq FROM streams WHERE id = $1", {id_param(stream)});
  if (!t) return std::move(t).error();
  return stream_position{static_cast<std::uint64_t>(t->value_or(0))};
}

result<std::vector<message_row>> stream_tables::read_messages(stream_id stream,
                                                              stream_position after,
                                                              stream_position upto,
                                                              std::size_t max_bytes) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  std::vector<message_row> out;
  std::size_t bytes = 0;
  for (;;) {
    auto r = db_->query(
        "SELECT seq, data FROM messages WHERE stream_id = $1 AND seq > $2 AND seq <= $3 "
        "ORDER BY seq LIMIT $4",
        {id_param(stream), position_param(after), position_param(upto),
         param::integer(k_read_page)});
    if (!r) return std::move(r).error();
    for (int i = 0; i < r->size() && (out.empty() || bytes < max_bytes); ++i) {
      out.push_back({position_at(*r, i, 0), r->bytes(i, 1)});
      bytes += out.back().data.size();
    }
    if (r->size() < k_read_page || bytes >= max_bytes) return out;
    after = out.back().seq;
  }
}

status stream_tables::lock_streams(const storage::stream_locks& locks) {
  if (locks.empty()) return ok_v;
  if (auto s = go_direct(); !s) return s;
  if (!locks.paths.empty()) {
    // The volatile pg_advisory_xact_lock() is evaluated after the sort: in key order.
    auto r = db_->query(
        "SELECT pg_advisory_xact_lock($1, k) FROM (SELECT DISTINCT hashtext(p) AS k FROM "
        "unnest($2::text[]) AS p) AS keys ORDER BY k",
        {param::integer(k_path_lock_space), text_array(locks.paths)});
    if (!r) return std::move(r).error();
  }
  // Under the path locks, the stream at each path is the one this transaction will find there.
  // ORDER BY id with FOR UPDATE locks the rows in that order: every node takes them the same way.
  auto r = db_->query(
      "WITH RECURSIVE removable AS ("
      "  SELECT id, fork_source_id FROM streams"
      "  WHERE path = ANY($1::text[]) OR id = ANY($3::bigint[])"
      "  UNION SELECT s.id, s.fork_source_id FROM streams s"
      "  JOIN removable r ON s.id = r.fork_source_id) "
      "SELECT " +
          std::string(k_stream_columns) +
          " FROM streams WHERE id IN (SELECT id FROM removable) OR id = ANY($2::bigint[]) "
          "ORDER BY id FOR UPDATE",
      {text_array(locks.paths), id_array(locks.ids), id_array(locks.removals)});
  if (!r) return std::move(r).error();
  for (int i = 0; i < r->size(); ++i)
    cache(row_at(*r, i), position_at(*r, i, 18));
  return ok_v;
}

result<stream_position> stream_tables::lock_tail(stream_row& row) {
  if (const cached_stream* c = cached(row.id)) {  // locked by this transaction already
    row = c->row;
    return c->tail;
  }
  auto r = db_->query(
      "SELECT " + std::string(k_stream_columns) + " FROM streams WHERE id = $1 FOR UPDATE",
      {id_param(row.id)});
  if (!r) return std::move(r).error();
  if (r->size() == 0) {  // purged by another node meanwhile
    row.state = stream_row_state::purging;
    return stream_position{};
  }
  row = row_at(*r, 0);
  cache(row, position_at(*r, 0, 18));
  return position_at(*r, 0, 18);
}

status stream_tables::insert_message(stream_id stream, stream_position seq, std::string_view data) {
  if (cached_stream* c = held_row(stream)) {
    if (seq != c->tail.next()) {
      return make_failure(failure_kind::internal, "tail_moved",
                          "stream " + std::to_string(stream.value()) + ": message " +
                              std::to_string(seq.value()) + " is not after the tail " +
                              std::to_string(c->tail.value()));
    }
    remember(*c);
    c->tail = seq;
    c->dirty = true;
    messages_.push_back({stream, seq, std::string(data)});
    return ok_v;
  }
  const std::string_view one[] = {data};
  auto last = append(stream, stream_position{seq.value() - 1}, one);
  if (!last) return std::move(last).error();
  return ok_v;
}

result<std::optional<producer_row>> stream_tables::find_producer(stream_id stream,
                                                                 std::string_view producer_id) {
  // Not cached: nothing is held for it, and the database has it as it is.
  if (auto it = producers_.find(producer_key{stream.value(), std::string(producer_id)});
      it != producers_.end()) {
    return it->second.value;
  }
  auto r =
      db_->query("SELECT epoch, last_seq FROM producers WHERE stream_id = $1 AND producer_id = $2",
                 {id_param(stream), std::string(producer_id)});
  if (!r) return std::move(r).error();
  if (r->size() == 0) return std::optional<producer_row>();
  return std::optional<producer_row>(producer_row{r->int64(0, 0), r->int64(0, 1)});
}

status stream_tables::upsert_producer(stream_id stream, std::string_view producer_id,
                                      std::int64_t epoch, std::int64_t last_seq,
                                      std::int64_t now_ms) {
  if (held_row(stream)) {
    producer_key key{stream.value(), std::string(producer_id)};
    remember(key);
    producers_[key] = cached_producer{producer_row{epoch, last_seq}, now_ms, true};
    return ok_v;
  }
  if (auto s = go_direct(); !s) return s;
  producers_.erase(producer_key{stream.value(), std::string(producer_id)});
  auto r = db_->query(
      "INSERT INTO producers (stream_id, producer_id, epoch, last_seq, updated_at_ms) "
      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (stream_id, producer_id) DO UPDATE SET "
      "epoch = EXCLUDED.epoch, last_seq = EXCLUDED.last_seq, updated_at_ms = "
      "EXCLUDED.updated_at_ms",
      {id_param(stream), std::string(producer_id), param::integer(epoch), param::integer(last_seq),
       param::integer(now_ms)});
  if (!r) return std::move(r).error();
  return ok_v;
}

status stream_tables::set_closed(stream_id stream, const std::optional<closed_by>& by) {
  if (cached_stream* c = held_row(stream)) {
    remember(*c);
    c->row.closed = true;
    c->row.closed_by_producer = by ? std::optional<std::string>(by->producer_id) : std::nullopt;
    c->row.closed_by_epoch = by ? std::optional<std::int64_t>(by->epoch) : std::nullopt;
    c->row.closed_by_seq = by ? std::optional<std::int64_t>(by->seq) : std::nullopt;
    c->dirty = true;
    return ok_v;
  }
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  auto r = db_->query(
      "UPDATE streams SET closed = TRUE, closed_by_producer = $2, closed_by_epoch = $3, "
      "closed_by_seq = $4 WHERE id = $1",
      {id_param(stream), by ? param(by->producer_id) : param(),
       by ? param::integer(by->epoch) : param(), by ? param::integer(by->seq) : param()});
  if (!r) return std::move(r).error();
  return ok_v;
}

status stream_tables::set_last_stream_seq(stream_id stream, std::string_view stream_seq) {
  if (cached_stream* c = held_row(stream)) {
    remember(*c);
    c->row.last_stream_seq = std::string(stream_seq);
    c->dirty = true;
    return ok_v;
  }
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  auto r = db_->query("UPDATE streams SET last_stream_seq = $2 WHERE id = $1",
                      {id_param(stream), std::string(stream_seq)});
  if (!r) return std::move(r).error();
  return ok_v;
}

status stream_tables::set_last_access(stream_id stream, std::int64_t last_access_ms) {
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  // Several nodes flush it: the latest wins, never an earlier one.
  auto r =
      db_->query("UPDATE streams SET last_access_ms = GREATEST(last_access_ms, $2) WHERE id = $1",
                 {id_param(stream), param::integer(last_access_ms)});
  if (!r) return std::move(r).error();
  return ok_v;
}

status stream_tables::set_soft_deleted(stream_id stream) {
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  auto r =
      db_->query("UPDATE streams SET state = 1 WHERE id = $1 AND state = 0", {id_param(stream)});
  if (!r) return std::move(r).error();
  return ok_v;
}

status stream_tables::mark_purging(stream_id stream) {
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  auto r =
      db_->query("UPDATE streams SET state = 2, path = NULL WHERE id = $1", {id_param(stream)});
  if (!r) return std::move(r).error();
  return ok_v;
}

result<bool> stream_tables::has_children(stream_id stream) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto n = db_->query_int64("SELECT count(*) FROM streams WHERE fork_source_id = $1 AND state <> 2",
                            {id_param(stream)});
  if (!n) return std::move(n).error();
  return n->value_or(0) > 0;
}

result<int> stream_tables::purge_messages(stream_id stream, int limit) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto n = db_->query_int64(
      "WITH gone AS (DELETE FROM messages WHERE stream_id = $1 AND seq IN ("
      "  SELECT seq FROM messages WHERE stream_id = $1 ORDER BY seq LIMIT $2) RETURNING 1) "
      "SELECT count(*) FROM gone",
      {id_param(stream), param::integer(limit)});
  if (!n) return std::move(n).error();
  return static_cast<int>(n->value_or(0));
}

status stream_tables::delete_stream(stream_id stream) {
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  if (auto r = db_->query("DELETE FROM producers WHERE stream_id = $1", {id_param(stream)}); !r) {
    return std::move(r).error();
  }
  if (auto r = db_->query("DELETE FROM streams WHERE id = $1", {id_param(stream)}); !r) {
    return std::move(r).error();
  }
  return ok_v;
}

result<std::vector<stream_id>> stream_tables::expired_streams(std::int64_t now_ms) {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto r = db_->query(
      "SELECT id FROM streams WHERE state = 0 AND ((ttl_seconds IS NOT NULL AND "
      "last_access_ms + ttl_seconds * 1000 <= $1) OR expires_at_ms <= $1) ORDER BY id",
      {param::integer(now_ms)});
  if (!r) return std::move(r).error();
  std::vector<stream_id> out;
  for (int i = 0; i < r->size(); ++i)
    out.push_back(stream_id{r->int64(i, 0)});
  return out;
}

result<std::vector<stream_id>> stream_tables::purging_streams() {
  if (auto s = go_direct(); !s) return std::move(s).error();
  auto r = db_->query("SELECT id FROM streams WHERE state = 2 ORDER BY id");
  if (!r) return std::move(r).error();
  std::vector<stream_id> out;
  for (int i = 0; i < r->size(); ++i)
    out.push_back(stream_id{r->int64(i, 0)});
  return out;
}

status stream_tables::prune_upto(stream_id stream, stream_position upto) {
  if (auto s = go_direct(); !s) return s;
  forget(stream);
  auto d = db_->query("DELETE FROM messages WHERE stream_id = $1 AND seq <= $2",
                      {id_param(stream), position_param(upto)});
  if (!d) return std::move(d).error();
  auto u = db_->query("UPDATE streams SET pruned_upto = GREATEST(pruned_upto, $2) WHERE id = $1",
                      {id_param(stream), position_param(upto)});
  if (!u) return std::move(u).error();
  return ok_v;
}

}  // namespace ordo::postgres
