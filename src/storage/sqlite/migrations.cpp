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
//                   never below base_seq nor pruned_upto (version 3): derived, never stored,
//                   and a position is never handed out twice.
//   fork_sub_offset the sub-offset the fork was created with (kept to answer idempotent PUTs).
//   closed_by_*     the idempotent-producer tuple whose append closed the stream, if any.
//   last_stream_seq the last Stream-Seq value accepted (writer coordination, scope: stream).
//   last_access_ms  for sliding TTLs; flushed from memory periodically, not on every read.
//
// messages(stream_id, seq, data): one row per accepted append (per POST, or the initial body of
//   a PUT). seq is dense per stream and assigned by the writer inside the committing
//   transaction: seq = tail + 1. data is the raw bytes, or for application/json streams the
//   minified values of the append joined by ',' (so a read is '[' + rows joined by ',' + ']').
//   Version 5 makes it a rowid table with a unique index on (stream_id, seq); see there.
//
// producers(stream_id, producer_id, epoch, last_seq): idempotent-producer state, written in the
//   same transaction as the messages it admits, so a retry after a crash is recognised.
//
// Sessions (version 2)
// --------------------
// Every CHECK (column IN (...)) below lists the texts of one enum of session_enums.hpp, in its
// order (session_enums_test.cpp compares them): renaming or adding one is a migration.
// projects: id is a slug; archived_at_ms is a soft delete (a session's project always
//   resolves). next_session_number hands out session numbers: only ever incremented, so a
//   number is never reused even if sessions are removed.
// sessions: id = "{project}-{number}". seq orders sessions by creation (paging). state and
//   end_reason follow the lifecycle table in sessions/lifecycle.cpp; end_reason is set exactly
//   when state is 'ended' (CHECK). revision is bumped by every mutation (If-Match). The
//   next_* counters assign row sequences, command sequences and execution generations inside
//   the writer's transaction: nothing else assigns them. events_stream_id is the session's
//   managed event stream (application/json), appended to in the same transaction as each
//   mutation and closed when the session ends.
// executions: generation is the fencing token of one agent run; the partial unique index keeps
//   at most one unfinished execution per session.
// commands: request_id is the client's Idempotency-Key; body is the canonical JSON of the
//   request, compared exactly to tell a retry (same body) from a reuse (different body).
// rows: the transcript. seq is assigned at first insert and kept by every upsert; revision
//   counts upserts. request_id / request_body give appends the same idempotency as commands.
//   rows_awaiting_action finds pending approval requests (derived state requires_action).
//
// Pull requests and retention (version 3)
// ---------------------------------------
// prs: one row per PR URL (a session may have several), the facts an SCM poller last saw, with
//   CHECK-constrained enums. next_check_seq numbers check rows in the order they were first
//   seen, which orders commits for the CI-fix-loop brake.
// pr_checks: CI run history, one row per check per commit; a status change of the same check
//   on the same commit updates the row (and is a change on the feed).
// pr_comments: the PR's current comment set, reconciled as a set on each observation.
// streams.pruned_upto: positions up to here were removed by retention (the change feed);
//   reading before it answers 410 with a pointer to the snapshot.
#include "storage/sqlite/migrations.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <string>

#include "storage/schema_checks.hpp"

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

constexpr std::string_view k_v2_sessions = R"sql(
CREATE TABLE projects (
  id                  TEXT PRIMARY KEY,
  name                TEXT NOT NULL,
  repo_path           TEXT,
  origin_url          TEXT,
  description         TEXT,
  created_at_ms       INTEGER NOT NULL,
  updated_at_ms       INTEGER NOT NULL,
  archived_at_ms      INTEGER,
  revision            INTEGER NOT NULL DEFAULT 1,
  next_session_number INTEGER NOT NULL DEFAULT 1 CHECK (next_session_number >= 1)
) WITHOUT ROWID;

CREATE TABLE sessions (
  seq                 INTEGER PRIMARY KEY,
  id                  TEXT NOT NULL UNIQUE,
  project_id          TEXT NOT NULL REFERENCES projects(id),
  number              INTEGER NOT NULL,
  state               TEXT NOT NULL CHECK (state IN ('created', 'starting', 'active',
                        'suspended', 'detached', 'closing', 'ended')),
  end_reason          TEXT CHECK (end_reason IS NULL OR end_reason IN ('completed', 'killed',
                        'failed', 'pr_merged', 'reaped', 'cancelled')),
  revision            INTEGER NOT NULL DEFAULT 1,
  agent_kind          TEXT,
  model               TEXT,
  title               TEXT,
  branch              TEXT,
  workspace_path      TEXT,
  tags                TEXT NOT NULL DEFAULT '[]',
  last_heartbeat_ms   INTEGER,
  created_at_ms       INTEGER NOT NULL,
  updated_at_ms       INTEGER NOT NULL,
  ended_at_ms         INTEGER,
  events_stream_id    INTEGER NOT NULL REFERENCES streams(id),
  next_row_seq        INTEGER NOT NULL DEFAULT 1,
  next_command_seq    INTEGER NOT NULL DEFAULT 1,
  next_generation     INTEGER NOT NULL DEFAULT 1,
  UNIQUE (project_id, number),
  CHECK ((state = 'ended') = (end_reason IS NOT NULL))
);
CREATE INDEX sessions_by_project ON sessions(project_id, seq);
CREATE INDEX sessions_awaiting_heartbeat ON sessions(state, last_heartbeat_ms)
  WHERE state IN ('starting', 'active', 'detached');

CREATE TABLE executions (
  session_id     TEXT NOT NULL REFERENCES sessions(id),
  generation     INTEGER NOT NULL CHECK (generation >= 1),
  started_at_ms  INTEGER NOT NULL,
  finished_at_ms INTEGER,
  finish_reason  TEXT CHECK (finish_reason IS NULL OR finish_reason IN ('completed', 'failed',
                   'aborted', 'lost', 'session_ended')),
  PRIMARY KEY (session_id, generation),
  CHECK ((finished_at_ms IS NULL) = (finish_reason IS NULL))
) WITHOUT ROWID;
CREATE UNIQUE INDEX executions_one_active ON executions(session_id)
  WHERE finished_at_ms IS NULL;

CREATE TABLE commands (
  session_id    TEXT NOT NULL REFERENCES sessions(id),
  seq           INTEGER NOT NULL CHECK (seq >= 1),
  request_id    TEXT NOT NULL,
  body          TEXT NOT NULL,
  status        TEXT NOT NULL CHECK (status IN ('accepted', 'delivered', 'done', 'failed',
                  'interrupted')),
  result        TEXT,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq),
  UNIQUE (session_id, request_id)
) WITHOUT ROWID;
CREATE INDEX commands_pending ON commands(session_id, seq)
  WHERE status IN ('accepted', 'delivered');

CREATE TABLE rows (
  session_id    TEXT NOT NULL REFERENCES sessions(id),
  seq           INTEGER NOT NULL CHECK (seq >= 1),
  row_id        TEXT NOT NULL,
  kind          TEXT NOT NULL CHECK (kind IN ('user', 'assistant', 'tool_call', 'tool_result',
                  'approval_request', 'approval_response', 'system')),
  status        TEXT NOT NULL CHECK (status IN ('pending', 'in_progress', 'complete', 'failed',
                  'approved', 'denied', 'cancelled')),
  body          TEXT NOT NULL,
  revision      INTEGER NOT NULL DEFAULT 1,
  request_id    TEXT,
  request_body  TEXT,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (session_id, seq),
  UNIQUE (session_id, row_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX rows_by_request ON rows(session_id, request_id) WHERE request_id IS NOT NULL;
CREATE INDEX rows_awaiting_action ON rows(session_id)
  WHERE kind = 'approval_request' AND status = 'pending';
)sql";

constexpr std::string_view k_v3_pull_requests = R"sql(
CREATE TABLE prs (
  url             TEXT PRIMARY KEY,
  session_id      TEXT NOT NULL REFERENCES sessions(id),
  number          INTEGER,
  title           TEXT,
  state           TEXT NOT NULL CHECK (state IN ('open', 'merged', 'closed')),
  review_decision TEXT NOT NULL CHECK (review_decision IN ('approved', 'changes_requested',
                    'review_required', 'none')),
  mergeability    TEXT NOT NULL CHECK (mergeability IN ('mergeable', 'conflicting', 'unknown')),
  ci_state        TEXT NOT NULL CHECK (ci_state IN ('pending', 'passing', 'failing', 'none')),
  head_commit     TEXT,
  revision        INTEGER NOT NULL DEFAULT 1,
  next_check_seq  INTEGER NOT NULL DEFAULT 1,
  created_at_ms   INTEGER NOT NULL,
  updated_at_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX prs_by_session ON prs(session_id);

CREATE TABLE pr_checks (
  pr_url          TEXT NOT NULL REFERENCES prs(url),
  name            TEXT NOT NULL,
  commit_sha      TEXT NOT NULL,
  seq             INTEGER NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('queued', 'in_progress', 'success', 'failure',
                    'cancelled', 'skipped', 'neutral', 'timed_out')),
  url             TEXT,
  started_at_ms   INTEGER,
  completed_at_ms INTEGER,
  created_at_ms   INTEGER NOT NULL,
  updated_at_ms   INTEGER NOT NULL,
  PRIMARY KEY (pr_url, name, commit_sha)
) WITHOUT ROWID;

CREATE TABLE pr_comments (
  pr_url        TEXT NOT NULL REFERENCES prs(url),
  comment_id    TEXT NOT NULL,
  author        TEXT,
  body          TEXT NOT NULL,
  path          TEXT,
  line          INTEGER,
  resolved      INTEGER NOT NULL CHECK (resolved IN (0, 1)),
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (pr_url, comment_id)
) WITHOUT ROWID;

ALTER TABLE streams ADD COLUMN pruned_upto INTEGER NOT NULL DEFAULT 0;
)sql";

// The append log: every message under stream_tables::k_direct_message_bytes is written here
// first, in arrival order, and moved into `messages` in bulk by the writer
// (stream_tables::merge_log). An append then dirties the
// log's last page, shared by every stream, instead of its own stream's last leaf in `messages`:
// with appends spread over many streams, the latter is one page written to the WAL per append.
// A message is in exactly one of the two tables; for each stream, every seq in the log is above
// every seq in `messages`.
constexpr std::string_view k_v4_append_log = R"sql(
CREATE TABLE recent_messages (
  pos       INTEGER PRIMARY KEY,
  stream_id INTEGER NOT NULL,
  seq       INTEGER NOT NULL CHECK (seq > 0),
  data      BLOB NOT NULL
);
)sql";

// Messages apart from their key (version 5). Until version 4 `messages` was WITHOUT ROWID, keyed
// by (stream_id, seq), so each message's data sat in its b-tree entry, and the interior pages
// held copies of whole entries. A message may be as large as --max-body-bytes: every seek that
// reached a large one (the writer's tail lookup of any stream, a read of any stream beside it)
// loaded all of it, overflow pages included, and one 10 MiB message made every append to every
// stream 14-21 times slower. Now the table is keyed by a rowid, so its interior pages hold
// integers, and the unique index messages_by_position holds (stream_id, seq, id) alone: a tail
// lookup reads the index only (covering), a range read walks the index and fetches each row by
// id, and no message's size reaches another stream's lookups. The append log writes rows in
// stream order at each merge, so a stream's rows stay close together.
constexpr std::string_view k_v5_messages_apart = R"sql(
CREATE TABLE messages_v5 (
  id        INTEGER PRIMARY KEY,
  stream_id INTEGER NOT NULL,
  seq       INTEGER NOT NULL CHECK (seq > 0),
  data      BLOB NOT NULL
);
INSERT INTO messages_v5 (stream_id, seq, data)
  SELECT stream_id, seq, data FROM messages ORDER BY stream_id, seq;
DROP TABLE messages;
ALTER TABLE messages_v5 RENAME TO messages;
CREATE UNIQUE INDEX messages_by_position ON messages(stream_id, seq);
)sql";

constexpr std::array k_migrations{
    migration{1, "streams core", k_v1_streams_core},
    migration{2, "sessions", k_v2_sessions},
    migration{3, "pull requests and retention", k_v3_pull_requests},
    migration{4, "append log", k_v4_append_log},
    migration{5, "messages apart from their key", k_v5_messages_apart},
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

namespace {

// Rows a migration left pointing at nothing, as "table rowid N -> parent" lines.
result<std::vector<std::string>> dangling_foreign_keys(connection& db) {
  auto check = db.prepare("PRAGMA foreign_key_check");
  if (!check) return std::move(check).error();
  std::vector<std::string> found;
  for (;;) {
    auto row = check->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    found.push_back(std::string(check->column_text(0)) + " row " +
                    std::to_string(check->column_int64(1)) + " -> " +
                    std::string(check->column_text(2)));
  }
  return found;
}

// One schema object as the probe compares it: a table's columns, or an index's definition.
struct schema_object {
  std::string type;  // table or index
  std::string name;
  std::string table;
  std::vector<std::string> columns;  // "name type notnull pk", in order (tables only)
};

result<std::vector<schema_object>> schema_of(connection& db) {
  auto objects = db.prepare(
      "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index') "
      "AND name NOT LIKE 'sqlite_%' ORDER BY type DESC, name");
  if (!objects) return std::move(objects).error();
  std::vector<schema_object> out;
  for (;;) {
    auto row = objects->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    out.push_back({std::string(objects->column_text(0)),
                   std::string(objects->column_text(1)),
                   std::string(objects->column_text(2)),
                   {}});
  }
  auto columns =
      db.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info(?1) ORDER BY cid");
  if (!columns) return std::move(columns).error();
  for (schema_object& o : out) {
    if (o.type != "table") continue;
    columns->reset();
    columns->bind_text(1, o.name);
    for (;;) {
      auto row = columns->step();
      if (!row) return std::move(row).error();
      if (!*row) break;
      o.columns.push_back(std::string(columns->column_text(0)) + " " +
                          std::string(columns->column_text(1)) +
                          (columns->column_int64(2) ? " NOT NULL" : "") +
                          (columns->column_int64(3) ? " PRIMARY KEY" : ""));
    }
  }
  return out;
}

}  // namespace

result<std::vector<migration>> pending_migrations(connection& db) {
  auto current = current_schema_version(db);
  if (!current) return std::move(current).error();
  if (auto s = storage::refuse_newer_schema(*current, latest_schema_version()); !s)
    return std::move(s).error();
  std::vector<migration> pending;
  for (const migration& m : k_migrations) {
    if (m.version > *current) pending.push_back(m);
  }
  return pending;
}

result<int> apply_migrations(connection& db, std::span<const migration> migrations) {
  if (auto s = db.exec(k_create_migrations_table); !s) return std::move(s).error();
  auto current = current_schema_version(db);
  if (!current) return std::move(current).error();
  const std::int64_t known = migrations.empty() ? 0 : migrations.back().version;
  if (auto s = storage::refuse_newer_schema(*current, known); !s) return std::move(s).error();
  int applied = 0;
  for (const migration& m : migrations) {
    if (m.version <= *current) continue;
    if (auto s = db.exec("BEGIN EXCLUSIVE"); !s) return std::move(s).error();
    auto fail = [&](failure f) -> result<int> {
      (void)db.exec("ROLLBACK");
      f.message = "migration " + std::to_string(m.version) + " (" + std::string(m.name) +
                  ") failed: " + f.message;
      return f;
    };
    if (auto s = db.exec(m.sql); !s) return fail(std::move(s).error());
    // The invariant every migration keeps: no row refers to a row that does not exist.
    auto dangling = dangling_foreign_keys(db);
    if (!dangling) return fail(std::move(dangling).error());
    if (!dangling->empty()) {
      return fail(make_failure(
          failure_kind::internal, "migration_invariant",
          "it would leave rows referring to missing rows: " + storage::listed_problems(*dangling)));
    }
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

result<int> migrate(connection& db) {
  auto applied = apply_migrations(db, k_migrations);
  if (!applied) return applied;
  if (auto s = verify_schema(db); !s) return std::move(s).error();
  return applied;
}

status verify_schema(connection& db) {
  auto version = current_schema_version(db);
  if (!version) return std::move(version).error();
  auto reference =
      connection::open(":memory:", open_mode::read_write_create, std::chrono::milliseconds(0));
  if (!reference) return std::move(reference).error();
  std::vector<migration> upto;
  for (const migration& m : k_migrations) {
    if (m.version <= *version) upto.push_back(m);
  }
  if (auto s = apply_migrations(*reference, upto); !s) return std::move(s).error();
  auto expected = schema_of(*reference);
  if (!expected) return std::move(expected).error();
  auto actual = schema_of(db);
  if (!actual) return std::move(actual).error();

  std::vector<std::string> problems;
  for (const schema_object& want : *expected) {
    auto have = std::find_if(actual->begin(), actual->end(), [&](const schema_object& o) {
      return o.type == want.type && o.name == want.name;
    });
    if (have == actual->end()) {
      problems.push_back(want.type + " " + want.name + " is missing");
      continue;
    }
    for (const std::string& column : want.columns) {
      const std::string name = column.substr(0, column.find(' '));
      auto same_name =
          std::find_if(have->columns.begin(), have->columns.end(),
                       [&](const std::string& c) { return c.substr(0, c.find(' ')) == name; });
      if (same_name == have->columns.end()) {
        problems.push_back("column " + want.name + "." + name + " is missing");
      } else if (*same_name != column) {
        problems.push_back("column " + want.name + "." + name + " is '" + *same_name +
                           "', expected '" + column + "'");
      }
    }
  }
  if (problems.empty()) return ok_v;
  return make_failure(
      failure_kind::unavailable, "schema_mismatch",
      "the database claims schema version " + std::to_string(*version) +
          " but its schema differs (changed outside ordo?): " + storage::listed_problems(problems) +
          ". Restore a copy of the database from before the change.");
}

}  // namespace ordo::sqlite
