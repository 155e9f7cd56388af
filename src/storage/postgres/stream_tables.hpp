// Typed access to the streams tables on PostgreSQL (schema: migrations.cpp): the only place
// their SQL lives, as storage/sqlite/stream_tables.hpp is for SQLite.
//
// What differs from SQLite is how positions are handed out. Several nodes write the same
// database, so no node's memory knows a stream's tail: a writer locks the counter rows of the
// streams a batch touches (lock_streams(): paths first, then rows FOR UPDATE in id order, so two
// nodes do not deadlock), appends after the tail it read and bumps the counter, all in the
// batch's transaction. A
// rolled-back transaction takes its positions back with it (dense positions), and PostgreSQL
// makes a transaction visible before it releases its row locks, so no reader sees position N+1
// of a stream before position N.
//
// Write-behind. Each statement is a round trip to PostgreSQL (and, on a small machine, two
// context switches), so a writer that sent every append's reads and writes as they came would
// spend most of a batch waiting. Inside a transaction, the rows lock_streams() and lock_tail()
// locked are kept here: nobody else can change them until the transaction ends, so reads of them
// are answered from memory. A job that only appends (savepoint_for_appends()) keeps its savepoint
// here too, and its writes (messages, counters, closes, Stream-Seq, producer states) are held
// until flush() or commit(), which sends them all in one statement; rolling such a job back
// restores what it changed here. Any other statement first sends what is held (and the held
// savepoint, if its job has written nothing yet), so the database is always what the writer
// would have made of it statement by statement.
//
// Thread safety: a stream_tables belongs to the thread that owns its connection.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "base/stream_position.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/stream_rows.hpp"
#include "storage/stream_store.hpp"

namespace ordo::postgres {

using storage::closed_by;
using storage::loaded_stream;
using storage::message_row;
using storage::producer_row;
using storage::stream_row;
using storage::stream_row_state;

// Reads the database epoch (meta.database_epoch), creating it (random, never 0) in a new
// database; two nodes starting at once agree on one.
result<std::uint64_t> load_or_create_database_epoch(connection& db);

class stream_tables final : public storage::stream_store {
 public:
  explicit stream_tables(connection& db) : db_(&db) {}

  // Transactions (READ COMMITTED) and the savepoint around each job of a batch (held here for a
  // job that only appends: see "Write-behind" above).
  status begin() override;
  status commit() override;
  status rollback() override;
  status savepoint() override;
  status savepoint_for_appends() override;
  status release_savepoint() override;
  status rollback_to_savepoint() override;
  status flush() override;

  // Every live or soft-deleted stream with its tail, in id order (a node's registry).
  result<std::vector<loaded_stream>> load_streams() override;
  result<std::optional<stream_row>> find_by_path(std::string_view path) override;
  result<std::optional<stream_row>> find_by_id(stream_id id) override;

  // The stream at `path` (any state but purging) with its tail, as committed: what a node checks
  // its record against before it answers a request (streams/postgres_storage.cpp).
  result<std::optional<loaded_stream>> find_loaded(std::string_view path);
  // The streams of `ids` that still exist, with their tails, in id order.
  result<std::vector<loaded_stream>> find_loaded(const std::vector<stream_id>& ids);

  // Creates the stream (its counter starts at base_seq) and returns its id. A path taken by
  // another stream is storage_constraint.
  result<stream_id> insert_stream(const stream_row& row) override;

  // Locks the counter rows of `streams` until the transaction ends, in id order, and returns
  // each one's tail (streams that do not exist are left out). Inside a transaction only.
  result<std::vector<std::pair<stream_id, stream_position>>> lock_tails(
      std::vector<stream_id> streams);
  // Appends `messages` at the positions after `tail`, which lock_tails() returned in this
  // transaction, and moves the counter past them. Returns the new tail. A tail that is not the
  // counter's (a caller that did not lock it) fails with tail_moved and writes nothing.
  result<stream_position> append(stream_id stream, stream_position tail,
                                 std::span<const std::string_view> messages);
  // The stream's tail as committed (or as this transaction left it); 0 if it does not exist.
  result<stream_position> tail(stream_id stream);
  result<stream_position> tail(const stream_row& row) override { return tail(row.id); }

  // The writer's side of the two above (storage/stream_store.hpp). lock_streams() takes a
  // transaction-scoped advisory lock per path (in the order of PostgreSQL's hashtext() of it,
  // in a key space of its own), then locks the rows of the streams at those paths, of `ids`,
  // and of the fork sources of paths and removals, in one statement, FOR UPDATE in id order.
  // lock_tail() locks one counter row (already locked by lock_streams() when the batch named it)
  // and re-reads the row under the lock (a stream another node purged meanwhile comes back in
  // state purging), and insert_message() appends one message after it.
  status lock_streams(const storage::stream_locks& locks) override;
  result<stream_position> lock_tail(stream_row& row) override;
  status insert_message(stream_id stream, stream_position seq, std::string_view data) override;

  // Messages with after < seq <= upto, in order, stopping once `max_bytes` is reached (always at
  // least one, however large). Fetched k_read_page rows at a time.
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
  // Frees the path at once (state purging); the data goes in batches (purge_messages()).
  status mark_purging(stream_id stream) override;
  result<bool> has_children(stream_id stream) override;
  // Deletes up to `limit` of the stream's messages, oldest first; returns how many it deleted.
  result<int> purge_messages(stream_id stream, int limit) override;
  // Deletes the stream's row and its producers (once its messages are gone).
  status delete_stream(stream_id stream) override;
  result<std::vector<stream_id>> purging_streams() override;
  // Live streams whose sliding TTL (from the last access any node recorded) or Expires-At has
  // passed at `now_ms`.
  result<std::vector<stream_id>> expired_streams(std::int64_t now_ms);
  // Deletes the messages up to `upto` and records it (retention).
  status prune_upto(stream_id stream, stream_position upto) override;

 private:
  // A row this transaction locked, as the transaction has made it.
  struct cached_stream {
    stream_row row;
    stream_position tail;
    stream_position stored_tail;  // the counter as the database holds it
    bool dirty = false;           // held changes to the row or its counter
  };
  struct cached_producer {
    std::optional<producer_row> value;
    std::int64_t updated_at_ms = 0;
    bool dirty = false;
  };
  struct held_message {
    stream_id stream;
    stream_position seq;
    std::string data;
  };
  using producer_key = std::pair<std::int64_t, std::string>;
  enum class job_savepoint { none, held, sent };

  void cache(const stream_row& row, stream_position tail);
  void forget(stream_id id);
  void forget_all();
  cached_stream* cached(stream_id id);
  // The row, or nullptr if it is not cached or the job may not hold back changes to it.
  cached_stream* held_row(stream_id id);
  // Before a held job changes a row or a producer here: what rolling it back restores.
  void remember(const cached_stream& s);
  void remember(const producer_key& key);
  // Before any statement other than the cached reads' own: what is held goes to the database
  // first (the job's savepoint with it, unless the job has held back a write already: an error).
  status go_direct();
  // Sends every held write, in as few statements as PostgreSQL's parameter limit allows.
  status write_held();

  connection* db_;
  bool in_transaction_ = false;
  std::unordered_map<std::int64_t, cached_stream> rows_;
  std::unordered_map<std::string, std::int64_t> paths_;
  std::map<producer_key, cached_producer> producers_;
  std::vector<held_message> messages_;
  job_savepoint savepoint_ = job_savepoint::none;
  std::size_t savepoint_messages_ = 0;  // messages_ held before the job
  std::vector<cached_stream> undo_rows_;
  std::vector<std::pair<producer_key, std::optional<cached_producer>>> undo_producers_;
};

}  // namespace ordo::postgres
