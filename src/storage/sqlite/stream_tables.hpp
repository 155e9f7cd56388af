// Typed access to the streams tables (schema: migrations.cpp). The only place stream SQL lives.
//
// stream_tables is the write side: it belongs to the writer thread, together with the write
// connection, and wraps every statement the group-commit writer runs, including transaction
// and savepoint control. message_reader is the read side: one per reader connection.
//
// Its rows and arguments carry stream ids and positions as their own types
// (base/stream_position.hpp); the binds and columns below are where they become integers, so
// nothing above storage converts them (and a position can never be bound where an id goes).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.hpp"
#include "base/stream_position.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/stream_rows.hpp"
#include "storage/stream_store.hpp"

namespace ordo::sqlite {

// The rows (storage/stream_rows.hpp), under the names the SQLite code has always used.
using storage::closed_by;
using storage::message_row;
using storage::producer_row;
using storage::stream_row;
using storage::stream_row_state;

// Where stream ids and positions become SQLite integers and back: the stream tables' columns,
// and those of the session tables that hold a stream's id or position. Positions are stored as
// INTEGER, which holds every position an offset can print (k_max_offset_position < 2^63).
inline void bind_stream_id(statement& s, int index, stream_id id) {
  s.bind_int64(index, id.value());
}
inline void bind_position(statement& s, int index, stream_position p) {
  s.bind_int64(index, static_cast<std::int64_t>(p.value()));
}
inline stream_id column_stream_id(const statement& s, int index) {
  return stream_id{s.column_int64(index)};
}
inline stream_position column_position(const statement& s, int index) {
  return stream_position{static_cast<std::uint64_t>(s.column_int64(index))};
}

// Reads the database epoch, creating it (random, never 0) in a new database.
result<std::uint64_t> load_or_create_database_epoch(connection& db);

// The meta key `ordo backup` sets in its copy (value: when the backup was taken). A database
// that carries it was restored from a backup: positions past the backup's tails were handed
// out by the original for other data, so it takes a new epoch, and every offset minted before
// answers 410 (clients re-read) instead of resuming into different messages.
inline constexpr std::string_view k_meta_restored_backup = "restored_from_backup";

// Replaces the database epoch with a new random one (inside the caller's transaction): every
// offset handed out before then answers 410 and clients re-read.
status renew_database_epoch(connection& db);

// Gives a restored database a new epoch and removes the marker, in one transaction. Returns the
// marker's value when it did, nullopt for a database that was not restored.
result<std::optional<std::string>> renew_epoch_if_restored(connection& db);

// A stream's tail as the database file says it, from any connection (a reader's snapshot
// included): the highest position of its own messages in `messages` or the append log, never
// below base_seq nor pruned_upto; 0 for a stream that does not exist. The one definition of a
// tail outside the writer, whose stream_tables::tail() gives the same answer from its cached
// log tails.
result<stream_position> stream_tail(statement_cache& statements, stream_id stream);

using storage::loaded_stream;

class stream_tables final : public storage::stream_store {
 public:
  static constexpr std::size_t k_direct_message_bytes = 2048;

  static result<stream_tables> prepare(connection& db);

  // Every stream that is live or soft-deleted, with its tail (as tail() counts it).
  result<std::vector<loaded_stream>> load_streams() override;

  status begin_immediate();
  status begin() override { return begin_immediate(); }
  // The writer is alone: nothing to lock, and what it read stays true.
  status lock_streams(const storage::stream_locks&) override { return ok_v; }
  result<stream_position> lock_tail(stream_row& row) override { return tail(row); }
  status commit() override;
  status rollback() override;
  status savepoint() override;
  status release_savepoint() override;
  status rollback_to_savepoint() override;

  result<std::optional<stream_row>> find_by_path(std::string_view path) override;
  result<std::optional<stream_row>> find_by_id(stream_id id) override;
  // The stream's tail: MAX(seq) of its own messages, never below base_seq (a fork with no own
  // messages) nor pruned_upto (retention removed everything), so a position is never reused.
  result<stream_position> tail(const stream_row& row) override;
  result<stream_id> insert_stream(const stream_row& row) override;
  status insert_message(stream_id stream, stream_position seq, std::string_view data) override;
  // Own messages with after < seq <= upto, in order, stopping once max_bytes is reached.
  result<std::vector<message_row>> read_messages(stream_id stream, stream_position after,
                                                 stream_position upto,
                                                 std::size_t max_bytes) override;
  result<std::optional<producer_row>> find_producer(stream_id stream,
                                                    std::string_view producer_id) override;
  status upsert_producer(stream_id stream, std::string_view producer_id, std::int64_t epoch,
                         std::int64_t last_seq, std::int64_t now_ms) override;
  status set_closed(stream_id stream, const std::optional<closed_by>& by) override;
  status set_last_stream_seq(stream_id stream, std::string_view stream_seq) override;
  status set_last_access(stream_id stream, std::int64_t last_access_ms) override;
  status set_soft_deleted(stream_id stream) override;
  // Frees the path and hands the stream's data to the janitor.
  status mark_purging(stream_id stream) override;
  // Whether any live or soft-deleted stream forks from this one.
  result<bool> has_children(stream_id stream) override;
  // Deletes up to `limit` of the stream's messages; returns how many were deleted.
  result<int> purge_messages(stream_id stream, int limit) override;
  // Deletes the stream's producers, what the append log still holds of it, and its row (its
  // messages in `messages` must be gone).
  status delete_stream(stream_id stream) override;
  result<std::vector<stream_id>> purging_streams() override;
  // Retention: removes the messages at positions <= upto and records that they are gone.
  status prune_upto(stream_id stream, stream_position upto) override;

  // The append log (migration 4): insert_message() writes there, except a message of
  // k_direct_message_bytes or more to a stream the log holds nothing of. merge_log() moves all of
  // it into `messages` inside the caller's transaction; the writer calls it once the log holds
  // log_rows() rows or log_bytes() bytes over its limits.
  status merge_log();
  std::int64_t log_rows() const { return log_rows_; }
  std::size_t log_bytes() const { return log_bytes_; }

 private:
  connection* db_ = nullptr;
  statement begin_, commit_, rollback_, savepoint_, release_, rollback_to_;
  statement find_by_path_, find_by_id_, tail_, insert_stream_, insert_message_, read_messages_;
  statement find_producer_, upsert_producer_, set_closed_, set_last_stream_seq_, set_last_access_;
  statement set_soft_deleted_, mark_purging_, has_children_, purge_messages_, delete_producers_;
  statement delete_stream_, purging_streams_, prune_messages_, set_pruned_;
  statement logged_tails_, logged_tail_, merge_insert_, merge_delete_, prune_logged_;
  statement insert_direct_;

  status reload_log();
  // Deletes the stream's logged messages at positions <= upto.
  status delete_logged(stream_id stream, stream_position upto);
  void after_rollback();

  // What the append log holds, as of the writer's open transaction: each stream's highest seq
  // there (so tail() needs no scan of the unindexed log), its rows and payload bytes. Inserts
  // add to it; a rollback reloads it from the file; !log_known_ (a reload failed) makes tail()
  // ask the file.
  std::unordered_map<stream_id, stream_position> log_tails_;
  std::int64_t log_rows_ = 0;
  std::size_t log_bytes_ = 0;
  bool log_known_ = false;
};

// Read side: one per reader connection (reader threads only).
class message_reader {
 public:
  static result<message_reader> prepare(connection& db);
  result<std::vector<message_row>> read(stream_id stream, stream_position after,
                                        stream_position upto, std::size_t max_bytes);
  // The stream's pruned_upto as committed, at least as new as what read() just saw: a read that
  // finds positions missing asks this, since the engine publishes a prune only after its flush.
  result<stream_position> pruned_upto(stream_id stream);

 private:
  statement read_;
  statement pruned_upto_;
};

}  // namespace ordo::sqlite
