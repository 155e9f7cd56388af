// What the stream engine's writer needs of a database, whichever one it is: the streams tables
// inside one transaction per batch, with a savepoint per job. SQLite implements it in
// storage/sqlite/stream_tables.hpp (with its append log), PostgreSQL in
// storage/postgres/stream_tables.hpp (with a counter row per stream). Everything else the engine
// does with a database is the engine's own business per storage: the file and its -wal on
// SQLite, the connection and its wake-ups on PostgreSQL.
//
// The one difference the writer must know of is who else writes. On SQLite the writer is the
// only one: what it read earlier in its transaction stays true. On PostgreSQL other nodes write
// the same rows, so a transaction locks everything it may change at its start, always in the
// same order (lock_streams()), and each job then re-reads what it decides from under those locks
// (lock_tail()). Two nodes' transactions then never wait for each other in a cycle.
//
// Thread safety: a store belongs to the thread that owns its connection (the writer).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/stream_position.hpp"
#include "storage/stream_rows.hpp"

namespace ordo::storage {

// What a transaction may change, for lock_streams().
struct stream_locks {
  // Paths the transaction looks up, and may create a stream at: each path itself (so no other
  // transaction creates a stream there meanwhile), then the stream at it and every stream it
  // was forked from (a removal cascades to them; a fork's source must not be removed under it).
  std::vector<std::string> paths;
  // Streams known by id (their rows only).
  std::vector<stream_id> ids;
  // Streams known by id that the transaction may remove: with every stream they were forked from.
  std::vector<stream_id> removals;

  bool empty() const { return paths.empty() && ids.empty() && removals.empty(); }
};

class stream_store {
 public:
  virtual ~stream_store() = default;

  // The writer's transaction, and the savepoint around each of its jobs.
  virtual status begin() = 0;
  virtual status commit() = 0;
  virtual status rollback() = 0;
  virtual status savepoint() = 0;
  // The savepoint of a job that only appends: a store may keep it, and hold back the job's
  // writes, on its side until flush() (PostgreSQL: storage/postgres/stream_tables.hpp).
  virtual status savepoint_for_appends() { return savepoint(); }
  virtual status release_savepoint() = 0;
  virtual status rollback_to_savepoint() = 0;
  // Sends what the store holds back: before SQL that does not go through the store runs on the
  // same connection, and before commit().
  virtual status flush() { return ok_v; }

  // Every live or soft-deleted stream with its tail, in id order.
  virtual result<std::vector<loaded_stream>> load_streams() = 0;
  virtual result<std::optional<stream_row>> find_by_path(std::string_view path) = 0;
  virtual result<std::optional<stream_row>> find_by_id(stream_id id) = 0;
  // The stream's tail as committed, or as this transaction left it.
  virtual result<stream_position> tail(const stream_row& row) = 0;
  // Locks what `locks` names until the transaction ends, at its start: first the paths (in the
  // order of a hash of each), then the streams' rows (in id order). Every writer sharing the
  // database takes its locks this way, so none waits for another in a cycle. A no-op where the
  // writer is alone.
  virtual status lock_streams(const stream_locks& locks) = 0;
  // Locks the stream's row until the transaction ends, refreshes `row` with what another writer
  // may have changed since it was read, and returns the stream's tail: what an append decides
  // from.
  virtual result<stream_position> lock_tail(stream_row& row) = 0;

  // Creates the stream; a path taken by another live stream is storage_constraint.
  virtual result<stream_id> insert_stream(const stream_row& row) = 0;
  // Stores a message at `seq`, which must be the stream's tail + 1 under lock_tail().
  virtual status insert_message(stream_id stream, stream_position seq, std::string_view data) = 0;
  // Own messages with after < seq <= upto, in order, stopping once max_bytes is reached (always
  // at least one message when there is one).
  virtual result<std::vector<message_row>> read_messages(stream_id stream, stream_position after,
                                                         stream_position upto,
                                                         std::size_t max_bytes) = 0;

  virtual result<std::optional<producer_row>> find_producer(stream_id stream,
                                                            std::string_view producer_id) = 0;
  virtual status upsert_producer(stream_id stream, std::string_view producer_id, std::int64_t epoch,
                                 std::int64_t last_seq, std::int64_t now_ms) = 0;

  virtual status set_closed(stream_id stream, const std::optional<closed_by>& by) = 0;
  virtual status set_last_stream_seq(stream_id stream, std::string_view stream_seq) = 0;
  virtual status set_last_access(stream_id stream, std::int64_t last_access_ms) = 0;
  virtual status set_soft_deleted(stream_id stream) = 0;
  // Frees the path at once; the data goes in batches (purge_messages()).
  virtual status mark_purging(stream_id stream) = 0;
  // Whether any live or soft-deleted stream forks from this one.
  virtual result<bool> has_children(stream_id stream) = 0;
  // Deletes up to `limit` of the stream's messages; returns how many it deleted.
  virtual result<int> purge_messages(stream_id stream, int limit) = 0;
  // Deletes the stream's row and its producers (once its messages are gone).
  virtual status delete_stream(stream_id stream) = 0;
  virtual result<std::vector<stream_id>> purging_streams() = 0;
  // Retention: removes the messages at positions <= upto and records that they are gone.
  virtual status prune_upto(stream_id stream, stream_position upto) = 0;

 protected:
  stream_store() = default;
  stream_store(const stream_store&) = default;
  stream_store(stream_store&&) = default;
  stream_store& operator=(const stream_store&) = default;
  stream_store& operator=(stream_store&&) = default;
};

}  // namespace ordo::storage
