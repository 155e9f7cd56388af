// The schema, as an ordered list of migrations. This file is the format's documentation.
//
// Streams core (version 1)
// ------------------------
// meta(key, value)
//   database_epoch: 16 hex digits chosen at random when the database is created. Every
//   offset ordo hands out is prefixed with a value derived from it (see streams/offset.hpp),
//   so an offset minted by another database is recognised instead of being served wrong data.
//
// streams: one row per stream that exists, is soft-deleted, or is being purged.
//   path            the stream's key (the URL path after /v1/stream/); NULL while purging, so
//                   the path can be reused at once while the old data is removed in batches.
//   state           0 live, 1 soft-deleted (deleted or expired while forks still read through
//                   it: answers 410 and blocks re-creation), 2 purging (janitor removes data).
//   incarnation     random, chosen when a root stream is created and inherited by its forks
//                   (forks share their source's offset space); with the database epoch it
//                   forms the offset prefix, so a stream re-created at the same path never
//                   accepts offsets minted for its predecessor.
//   base_seq        0 for a root stream; for a fork, the source position it diverges at.
//                   Positions <= base_seq are read through fork_source_id; the stream's own
//                   messages have seq > base_seq. The tail is MAX(seq) of its own messages,
//                   or base_seq when it has none: derived, never stored.
//   fork_sub_offset the sub-offset the fork was created with (kept to answer idempotent PUTs).
//   closed_by_*     the idempotent-producer tuple whose append closed the stream, if any.
//   last_stream_seq the last Stream-Seq value accepted (writer coordination, scope: stream).
//   last_access_ms  for sliding TTLs; flushed from memory periodically, not on every read.
//
// messages(stream_id, seq, data): one row per accepted append (per POST, or the initial body of
//   a PUT). seq is dense per stream and assigned by the writer inside the committing
//   transaction: seq = tail + 1. data is the raw bytes, or for application/json streams the
//   minified values of the append joined by ',' (so a read is '[' + rows joined by ',' + ']').
//   WITHOUT ROWID: rows are small and always read by (stream_id, seq) ranges.
//
// producers(stream_id, producer_id, epoch, last_seq): idempotent-producer state, written in the
//   same transaction as the messages it admits, so a retry after a crash is recognised.
#include "storage/sqlite/migrations.hpp"

#include <array>
#include <chrono>
#include <string>

namespace ordo::sqlite {

namespace {

constexpr std::string_view k_v1_streams_core = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE streams (
  id                 INTEGER PRIMARY KEY AUTOINCREMENT,
  path               TEXT UNIQUE,
  state              INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
  content_type       TEXT NOT NULL,
  incarnation        INTEGER NOT NULL,
  created_at_ms      INTEGER NOT NULL,
  ttl_seconds        INTEGER CHECK (ttl_seconds IS NULL OR ttl_seconds >= 0),
  expires_at_ms      INTEGER,
  last_access_ms     INTEGER NOT NULL,
  closed             INTEGER NOT NULL DEFAULT 0 CHECK (closed IN (0, 1)),
  closed_by_producer TEXT,
  closed_by_epoch    INTEGER,
  closed_by_seq      INTEGER,
  last_stream_seq    TEXT,
  fork_source_id     INTEGER REFERENCES streams(id),
  base_seq           INTEGER NOT NULL DEFAULT 0 CHECK (base_seq >= 0),
  fork_sub_offset    INTEGER NOT NULL DEFAULT 0 CHECK (fork_sub_offset >= 0),
  CHECK ((state = 2) = (path IS NULL))
);

CREATE INDEX streams_by_fork_source ON streams(fork_source_id) WHERE fork_source_id IS NOT NULL;
CREATE INDEX streams_by_state ON streams(state) WHERE state <> 0;

CREATE TABLE messages (
  stream_id INTEGER NOT NULL,
  seq       INTEGER NOT NULL CHECK (seq > 0),
  data      BLOB NOT NULL,
  PRIMARY KEY (stream_id, seq)
) WITHOUT ROWID;

CREATE TABLE producers (
  stream_id     INTEGER NOT NULL,
  producer_id   TEXT NOT NULL,
  epoch         INTEGER NOT NULL CHECK (epoch >= 0),
  last_seq      INTEGER NOT NULL CHECK (last_seq >= 0),
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (stream_id, producer_id)
) WITHOUT ROWID;
)sql";

constexpr std::array k_migrations{
    migration{1, "streams core", k_v1_streams_core},
};

constexpr std::string_view k_create_migrations_table = R"sql(
CREATE TABLE IF NOT EXISTS schema_migrations (
  version       INTEGER PRIMARY KEY,
  name          TEXT NOT NULL,
  applied_at_ms INTEGER NOT NULL
);
)sql";

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::span<const migration> all_migrations() {
  return k_migrations;
}

std::int64_t latest_schema_version() {
  return k_migrations.back().version;
}

result<std::int64_t> current_schema_version(connection& db) {
  auto exists = db.query_int64(
      "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
  if (!exists) return std::move(exists).error();
  if (!exists->value_or(0)) return std::int64_t{0};
  auto version = db.query_int64("SELECT MAX(version) FROM schema_migrations");
  if (!version) return std::move(version).error();
  return version->value_or(0);
}

result<int> migrate(connection& db) {
  if (auto s = db.exec(k_create_migrations_table); !s) return std::move(s).error();
  auto current = current_schema_version(db);
  if (!current) return std::move(current).error();
  if (*current > latest_schema_version()) {
    return make_failure(failure_kind::unavailable, "schema_too_new",
                        "the database has schema version " + std::to_string(*current) +
                            ", written by a newer ordo; this binary knows versions up to " +
                            std::to_string(latest_schema_version()) +
                            ". Run the newer ordo, or restore a backup made by this version.");
  }
  int applied = 0;
  for (const migration& m : k_migrations) {
    if (m.version <= *current) continue;
    if (auto s = db.exec("BEGIN EXCLUSIVE"); !s) return std::move(s).error();
    auto fail = [&](failure f) -> result<int> {
      (void)db.exec("ROLLBACK");
      f.message = "migration " + std::to_string(m.version) + " (" + std::string(m.name) +
                  ") failed: " + f.message;
      return f;
    };
    if (auto s = db.exec(m.sql); !s) return fail(std::move(s).error());
    auto record =
        db.prepare("INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (?, ?, ?)");
    if (!record) return fail(std::move(record).error());
    record->bind_int64(1, m.version);
    record->bind_text(2, m.name);
    record->bind_int64(3, now_ms());
    if (auto s = record->run(); !s) return fail(std::move(s).error());
    if (auto s = db.exec("COMMIT"); !s) return fail(std::move(s).error());
    ++applied;
  }
  return applied;
}

}  // namespace ordo::sqlite
