// The stream engine: create / append / close / delete / read Durable Streams, durably.
//
// Write path (DESIGN.md, "Threads and the write path"): every mutation becomes a job in one
// queue. The writer thread takes everything queued, runs it as one transaction with a SAVEPOINT
// per job (a failing job fails alone and its caller gets the error) and commits it. Once the
// commit is on disk, it publishes each job's effects to the stream records (tail cache,
// wake-ups) and completes the callers. Offsets are assigned there, inside the committing
// transaction, and nowhere else. In WAL mode with --sync full, ordo fdatasyncs the -wal after
// each commit (sqlite/wal_syncer.hpp): on the writer thread by default, so what arrives during
// the flush forms the next batch, or (--wal-flush thread) on a syncer thread while the writer
// runs transaction N+1; batch N is published and acknowledged once its flush is done.
// A commit or flush whose outcome is unknown (an I/O error) makes every later write fail with
// 503 until restart, as LevelDB does after a failed fsync.
//
// The database file replaced under the server (seed 002: a store that kept serving a file no
// longer at its path): the writer compares the file at the path with the one it opened before
// every batch and every 250 ms. Once it differs, writes are refused. A valid replacement is
// adopted: it is validated on its own first (the old database's -wal is still beside it), then
// the readers finish what they are running, every old connection closes, the new file opens
// with a new database epoch, the registry is rebuilt from it and every old stream record is
// marked replaced (live readers end, resuming clients get 410 and re-read).
//
// Read path: published state comes from stream records (no database access); catch-up reads
// are served from a record's tail cache or, on a miss, by the reader pool.
//
// Thread safety: all public functions may be called from any thread. Callbacks run on the
// writer thread or a reader thread and must only hand the result to the caller's executor.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/metrics.hpp"
#include "base/result.hpp"
#include "base/thread_annotations.hpp"
#include "storage/sql_statement.hpp"
#include "storage/sqlite/database.hpp"
#include "storage/sqlite/database_file.hpp"
#include "storage/sqlite/read_pool.hpp"
#include "storage/sqlite/stream_tables.hpp"
#include "storage/sqlite/wal_syncer.hpp"
#include "storage/stream_store.hpp"
#include "streams/offset.hpp"
#include "streams/stream_record.hpp"

namespace ordo {

namespace postgres {
class connection;
class stream_tables;
class read_pool;
class listener;
class leadership;
struct wake_hint;
}  // namespace postgres

struct removal;

struct stream_engine_options {
  sqlite::database_options database;
  // A PostgreSQL database (postgres://...) instead of the SQLite file at database.path
  // (--storage). Empty: SQLite.
  std::string postgres_url;
  // How long the writer waits at most between attempts to connect again after PostgreSQL was
  // lost (it starts at 100 ms and doubles); writes answer 503 meanwhile.
  std::chrono::milliseconds postgres_max_backoff{5000};
  // --sync on PostgreSQL: full is synchronous_commit=on (a write is acknowledged once
  // PostgreSQL has flushed it, and a synchronous standby has it if one is configured); normal is
  // synchronous_commit=off (a crash of the PostgreSQL server may lose the last writes
  // acknowledged, never a part of one).
  bool postgres_synchronous_commit = true;
  // Where the -wal is flushed with --sync full in WAL mode (--wal-flush; wal_syncer.hpp).
  sqlite::wal_flush wal_flush = sqlite::wal_flush::writer;
  int reader_threads = 2;
  std::size_t max_read_queue = 4096;         // catch-up reads waiting for a reader thread
  std::size_t read_chunk_bytes = 1 << 20;    // most bytes in one catch-up response
  std::size_t tail_cache_bytes = 256 << 10;  // per stream
  // All streams' tail caches together: each maintenance pass empties the caches of the streams
  // appended to least recently until they fit.
  std::size_t tail_cache_total_bytes = 256 << 20;
  std::size_t max_write_queue_bytes = 256 << 20;        // queued append bytes before 503
  std::size_t max_write_queue_jobs = 100'000;           // queued jobs of any size before 503
  std::size_t max_batch_bytes = 64 << 20;               // most payload bytes in one transaction
  std::size_t max_batch_jobs = 4096;                    // most jobs in one transaction
  std::chrono::milliseconds maintenance_interval{500};  // expiry sweep, TTL flush, purge
  int purge_batch_messages = 10000;                     // messages deleted per janitor transaction
  // The append log is moved into the per-stream table once it holds this many messages or
  // payload bytes (stream_tables::merge_log).
  std::size_t log_merge_rows = 8192;
  std::size_t log_merge_bytes = 8 << 20;
  // Paths of managed streams (session events, the change feed) start with this: they are kept
  // like any stream but not counted or listed as clients' streams (stream_count(),
  // client_streams()).
  std::string managed_stream_prefix = "__";

  // Fault injection for tests: called by the writer at named points ("batch.begin",
  // "append.after_insert", "create.after_insert", "commit", "merge": inside the transaction
  // that moves the append log) with the job's stream path (empty for batch-wide points), and by the
  // flushing thread before each flush of the -wal ("flush"). A failure is treated exactly like a
  // storage failure at that point. Unset in production.
  std::function<status(std::string_view point, std::string_view path)> fault_injector;
};

// Counters of the writer's work, for tests and metrics.
struct writer_stats {
  std::uint64_t transactions_committed = 0;
  std::uint64_t jobs_committed = 0;
  std::uint64_t transactions_failed = 0;
};

// What the writer did, for /metrics (docs/OPERATIONS.md explains each metric). Written on the
// writer thread, read by scrapes on any thread.
struct engine_metrics {
  metrics::counter appends;            // client appends that stored a message
  metrics::counter appended_messages;  // messages stored by any write: appends, creates with
                                       // data, session events, the change feed
  metrics::counter appended_bytes;     // those messages' payload bytes
  // Jobs per committed write batch (one transaction, one flush).
  metrics::histogram batch_jobs{{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}, 1};
  // How long each COMMIT statement took (every transaction of the writer: batches, moves of the
  // append log, maintenance).
  metrics::histogram commit_durations{metrics::latency_bounds_ns(),
                                      metrics::k_nanoseconds_per_second};
};

// Whether the storage takes writes, most serious first in the order below: a commit of unknown
// outcome (poisoned, until restart); the file replaced, moved or deleted under the server
// (until a valid file is adopted); the last write batch failed because the disk is full, or
// because another process held a lock past --busy-timeout (until a batch commits again).
// On PostgreSQL, unavailable: the writer has no connection to the database (until it connects
// again).
enum class storage_state { ok, busy, full, unavailable, replaced, poisoned };
std::string_view to_string(storage_state s);
inline constexpr storage_state k_storage_states[] = {
    storage_state::ok,          storage_state::busy,     storage_state::full,
    storage_state::unavailable, storage_state::replaced, storage_state::poisoned};

struct producer_claim {
  std::string id;
  std::uint64_t epoch = 0;
  std::uint64_t seq = 0;
};

// ---- create ----------------------------------------------------------------------------------

struct create_request {
  std::string path;
  std::string content_type;  // empty: default (or the fork source's)
  std::optional<std::int64_t> ttl_seconds;
  std::optional<std::int64_t> expires_at_ms;
  bool closed = false;
  std::optional<std::string> initial_data;  // a stored row (JSON: minified values joined by ',')
  std::optional<std::string> fork_source_path;
  std::optional<stream_offset> fork_offset;  // the zero offset means "before any data"
  std::uint64_t fork_sub_offset = 0;
  std::int64_t now_ms = 0;
};

enum class create_status {
  created,             // 201
  exists,              // 200: same configuration
  config_conflict,     // 409: exists with a different configuration
  soft_deleted,        // 409: path blocked by a soft-deleted stream with forks
  source_not_found,    // 404: Stream-Forked-From names no stream
  source_unavailable,  // 409: the fork source is soft-deleted
  invalid,             // 400: e.g. fork offset beyond the source's tail
  failed,              // storage failure (see error)
};

struct stream_snapshot {
  std::string content_type;
  std::uint64_t offset_prefix = 0;
  stream_position tail;
  bool closed = false;
  std::optional<std::int64_t> ttl_seconds;
  std::optional<std::int64_t> expires_at_ms;
};

struct create_result {
  create_status status = create_status::failed;
  stream_snapshot stream;
  failure error;  // when status is not created/exists
};

// ---- append / close --------------------------------------------------------------------------

struct append_request {
  std::string path;
  std::string media_type;           // normalized request Content-Type ("" when absent)
  std::optional<std::string> data;  // the row to store; nullopt for close-only
  bool close = false;
  std::optional<std::string> stream_seq;
  std::optional<producer_claim> producer;
  std::int64_t now_ms = 0;
};

enum class append_status {
  appended,               // 204, or 200 with producer headers
  closed,                 // close-only: 204 with Stream-Closed
  duplicate,              // producer retry of an accepted append: 204
  not_found,              // 404
  gone,                   // 410: soft-deleted
  stream_closed,          // 409 with Stream-Closed and the final offset
  content_type_mismatch,  // 409
  stream_seq_conflict,    // 409
  stale_epoch,            // 403 with Producer-Epoch
  invalid_epoch_seq,      // 400: a new epoch must start at seq 0
  producer_seq_gap,       // 409 with Producer-Expected-Seq / Producer-Received-Seq
  overloaded,             // 503: write queue full
  failed,                 // storage failure (see error)
};

struct append_result {
  append_status status = append_status::failed;
  std::uint64_t offset_prefix = 0;
  stream_position tail;
  bool closed = false;
  std::uint64_t producer_epoch = 0;  // echoed, or the current epoch on stale_epoch
  std::uint64_t producer_seq = 0;    // highest accepted seq for (stream, producer, epoch)
  std::uint64_t expected_seq = 0;    // on producer_seq_gap
  std::uint64_t received_seq = 0;
  failure error;
};

// ---- delete ----------------------------------------------------------------------------------

enum class delete_status { deleted, not_found, gone, failed };

struct delete_result {
  delete_status status = delete_status::failed;
  failure error;
};

// ---- read ------------------------------------------------------------------------------------

struct read_result {
  std::optional<read_chunk> chunk;  // nullopt on failure
  failure error;
};

class stream_engine;

// One change a custom job made to streams, published after its transaction commits.
struct stream_effect {
  enum class kind { create, append, close, prune };
  kind what = kind::append;
  stream_id stream;
  std::optional<storage::stream_row> created;  // for create
  stream_position after;  // append: the position before the message; prune: pruned up to
  message_ptr message;    // for append
};

// What a custom write job (stream_engine::submit) may do. Valid only while the job runs on the
// writer thread, inside its own savepoint; everything it does commits or rolls back with the
// job, and the stream changes it makes are published (tail caches, wake-ups) after commit.
class write_context {
 public:
  // The writer's connection, for the session tables (storage/sql_statement.hpp).
  storage::sql_connection& sql() { return sql_; }
  std::int64_t now_ms() const { return now_ms_; }
  std::uint64_t database_epoch() const { return database_epoch_; }

  // Creates a stream at any path, including the reserved paths of managed streams.
  result<stream_id> create_stream(const std::string& path, const std::string& content_type);
  // Appends one message; returns the stream's new tail position.
  result<stream_position> append(stream_id stream, std::string data);
  // Closes a stream (idempotent).
  status close(stream_id stream);
  // The id of the live stream at `path`, if any.
  result<std::optional<stream_id>> find_stream(std::string_view path);
  // The offset a message appended to the stream now would end at (its position and prefix).
  result<stream_offset> next_offset(stream_id stream);
  // The offset prefix of a stream's family.
  std::uint64_t offset_prefix(std::uint64_t incarnation) const;
  // Retention: removes the stream's messages at positions <= upto.
  status prune(stream_id stream, stream_position upto);
  // Up to `limit` of the stream's oldest remaining messages.
  result<std::vector<storage::message_row>> oldest_messages(stream_id stream, std::size_t limit);
  // A named point where tests may inject a failure (stream_engine_options::fault_injector).
  status checkpoint(std::string_view point);

 private:
  friend class stream_engine;
  write_context(const stream_engine& engine, storage::sql_connection& sql,
                storage::stream_store& tables, std::uint64_t epoch, std::int64_t now_ms,
                std::vector<stream_effect>& effects)
      : engine_(engine),
        sql_(sql),
        tables_(tables),
        database_epoch_(epoch),
        now_ms_(now_ms),
        effects_(effects) {}

  const stream_engine& engine_;
  storage::sql_connection& sql_;
  storage::stream_store& tables_;
  std::uint64_t database_epoch_;
  std::int64_t now_ms_;
  std::vector<stream_effect>& effects_;
};

// A unit of work for the writer, submitted by other modules (sessions, change feed).
struct write_job {
  // Runs inside a savepoint. A failure rolls the job back (nothing of it is kept) and is what
  // `done` receives: a refusal the job decided on, or a storage error it met.
  std::function<status(write_context&)> run;
  // Called once on the writer thread: with nullopt after the transaction committed with the
  // job in it; with run()'s failure (the rest of the batch committed without it); or with the
  // failure that stopped the whole transaction.
  std::function<void(const std::optional<failure>&)> done;
  std::size_t bytes = 0;  // payload size, for the write queue's byte bound
  // Where several nodes share the storage: the streams (by path) the job may append to or
  // create, locked with the batch's other streams at its start (storage::stream_locks), so
  // that two nodes' batches do not wait for each other's locks in a cycle. A stream left out is
  // locked when the job appends; were another transaction to hold it while waiting for one of
  // this batch's streams, PostgreSQL would abort one of the two (503 storage_busy).
  std::vector<std::string> streams;
};

class stream_engine {
 public:
  using create_callback = std::function<void(create_result)>;
  using append_callback = std::function<void(append_result)>;
  using delete_callback = std::function<void(delete_result)>;
  using read_callback = std::function<void(read_result)>;

  static result<std::unique_ptr<stream_engine>> open(stream_engine_options options);
  ~stream_engine();

  // Drains queued writes, checkpoints the WAL (ordo.db-wal is left empty), stops the writer and
  // the reader pool.
  void stop();

  // The live or soft-deleted stream at `path`, or nullptr.
  std::shared_ptr<stream_record> find(std::string_view path) const;
  std::shared_ptr<stream_record> find_by_id(stream_id id) const;

  void create(create_request request, create_callback done);
  void append(append_request request, append_callback done);
  void remove(std::string path, delete_callback done);
  // Queues a custom job; false (and `done` is not called) when the write queue is full.
  bool submit(write_job job);
  // Runs `task` on a reader thread with its own read-only connection, inside one snapshot (a
  // read transaction), or `refuse` when no database can be read (the file was replaced and the
  // new one cannot be opened; PostgreSQL is away); false when the read queue is full (neither
  // is called).
  // A task that answers a client from what it read must call await_durable() before it answers.
  bool read_with(std::function<void(storage::read_snapshot&)> task,
                 std::function<void(const failure&)> refuse);
  // Waits until every transaction committed so far is on disk, so a read never shows what a
  // power failure could still take back; the failure when a flush failed.
  status await_durable();
  // Reads messages at positions (after, tail], at most read_chunk_bytes (at least one message).
  void read(std::shared_ptr<stream_record> stream, stream_position after, read_callback done);
  // The part of read() that needs no database: an empty chunk at the tail, or the messages the
  // stream's tail cache holds; nullopt when only a reader thread can serve `after`.
  std::optional<read_chunk> read_in_memory(const stream_record& stream,
                                           stream_position after) const;
  // Where the readers of a committed batch are woken: `run` posts the work to the server's
  // wake thread, so the writer thread goes back to writing instead of queueing one
  // wake-up per live reader (ten thousand for a stream with ten thousand SSE readers).
  // Unset (the default, and after set_wake_executor({})): on the writer thread.
  using wake_executor = std::function<void(std::function<void()>)>;
  void set_wake_executor(wake_executor run);
  // Whether other nodes write the same storage (PostgreSQL). Then the registry and the records
  // are this node's view, which follows the others' writes through their notifications: a
  // request that must see every write committed before it (a read, or a write to a stream this
  // node has not seen) calls refresh() first.
  bool storage_shared() const { return on_postgres(); }
  // Brings the record of the stream at `path` up to date with the database (created, appended
  // to, closed, deleted by another node), then calls `done` on a reader thread: with ok, or the
  // failure to reach the database. At once, on the caller's thread, where the storage is not
  // shared.
  void refresh(std::string path, std::function<void(status)> done);
  // Whether this node does the background work: expiring and purging streams. Always where the
  // storage is not shared; on PostgreSQL, the one node that holds the cluster's worker lock
  // (storage/postgres/leadership.hpp), which moves to another node when it dies.
  bool runs_background_work() const;
  // This node's name in its notifications (shared storage), random per process.
  const std::string& node_id() const { return node_id_; }
  // Asks the writer to expire a stream whose TTL or Expires-At has passed.
  void expire_soon(const std::shared_ptr<stream_record>& stream);

  std::uint64_t database_epoch() const { return database_epoch_.load(); }
  // Counts the database files this engine has served: 1 at open, one more per adopted
  // replacement. Stream records carry the generation they were made in.
  std::uint64_t generation() const { return generation_.load(); }
  // false once a commit of unknown outcome (until restart), or the database file being
  // replaced, moved or deleted under the server (until a valid file is adopted), stopped writes.
  bool writable() const;
  // Why writes are refused (for /ready), or an empty string when they are not.
  std::string write_refusal() const;
  // Called on the writer thread after a replacement file was adopted, e.g. to recreate managed
  // streams the new file lacks. It may submit jobs but must not wait for them.
  void on_adopted(std::function<void()> hook);
  // Streams clients created (managed streams are not counted).
  std::size_t stream_count() const;
  // Those streams (live and soft-deleted), ordered by path: what the dashboard's stream browser
  // lists. A copy of the registry taken under its lock.
  std::vector<std::shared_ptr<stream_record>> client_streams() const;
  writer_stats stats() const;
  const stream_engine_options& options() const { return options_; }
  const engine_metrics& metrics() const { return metrics_; }
  // How long each flush of the -wal took (empty unless --sync full in WAL mode).
  const metrics::histogram& flush_durations() const { return syncer_->flush_durations(); }
  storage_state current_storage_state() const;
  // Jobs and payload bytes waiting for the writer.
  std::pair<std::size_t, std::size_t> write_queue_depth() const;
  // What all tail caches held after the last maintenance pass (twice a second).
  std::size_t tail_cache_bytes() const { return tail_cache_bytes_.load(); }

 private:
  struct create_job;
  struct append_job;
  struct delete_job;
  struct custom_job;
  using job = std::variant<create_job*, append_job*, delete_job*, custom_job*>;

  explicit stream_engine(stream_engine_options options);

  bool enqueue(job j, std::size_t bytes);
  // Queues `j`, or frees it and answers its caller `refusal()` at once (the queue is full or
  // the engine is stopping).
  template <class Job, class Refusal>
  void enqueue_or_refuse(Job* j, std::size_t bytes, Refusal refusal);
  void writer_loop();
  // On the writer thread after the last write at stop: moves the WAL into the database file.
  void checkpoint_wal();
  // A batch whose transaction ran: it is published and its callers answered once commit
  // `commit` is durable. `error`: the failure that stopped the whole transaction.
  struct committed_batch {
    std::vector<job> jobs;
    std::vector<bool> ok;
    std::optional<failure> error;
    sqlite::commit_number commit;  // none (0): nothing was committed
  };
  // Runs the batch's transaction and commits it, then completes the batch before it (whose
  // flush ran meanwhile); this one waits in pending_.
  void run_batch(std::vector<job>& batch);
  // Completes the pending batch if its flush is done (between the jobs of the next batch).
  void complete_pending_if_flushed();
  // Waits for the pending batch's flush, publishes it and answers its callers. Called before
  // anything that must see every earlier batch published (maintenance, detaching, stopping,
  // going idle).
  void complete_pending();
  void complete_batch(committed_batch& batch);
  // The one place the published position advances, to commit `number` once its flush is done:
  // checks published <= flushed <= committed and that batches are published in commit order.
  // A violation logs, poisons the writer and is the batch's failure (nothing is published).
  status advance_published(sqlite::commit_number number);
  // Commits the open transaction as commit `number` and asks the syncer to flush it. A commit
  // that fails with an I/O error poisons the writer, whichever transaction it was (a batch,
  // maintenance, a purge, a move of the append log).
  status commit_transaction(sqlite::commit_number& number);
  // A commit that failed with an I/O error has an unknown outcome: writes are refused until
  // restart. Other failures (the transaction was rolled back) change nothing.
  void poison_if_unknown(const failure& f);
  // Waits until commit `number` is on disk; a failed flush poisons the writer.
  status await_flush(sqlite::commit_number number);
  // Commits the open transaction and waits until it is durable (maintenance, purge).
  status commit_now();
  // Each job runs inside its own savepoint; false means nothing of it may be kept.
  bool run_create(create_job& j);
  bool run_append(append_job& j);
  bool run_delete(delete_job& j);
  // After commit, in job order.
  void publish_create(create_job& j);
  void publish_append(append_job& j);
  void publish_removals(const std::vector<removal>& removals);
  void publish_effects(const std::vector<stream_effect>& effects);
  // Queues the record's readers to be woken at the end of complete_batch().
  void defer_wake(std::shared_ptr<stream_record> record);
  void run_wake_rounds(std::vector<std::shared_ptr<stream_record>> records);
  void run_maintenance();
  // Empties the tail caches of the streams appended to least recently until all of them
  // together hold at most options_.tail_cache_total_bytes.
  void enforce_cache_budget(const std::vector<std::shared_ptr<stream_record>>& records);
  bool run_purge_step();
  // Moves the append log into the per-stream table in one transaction once it is over
  // log_merge_rows or log_merge_bytes (`all`: whatever it holds, and waits for the flush).
  void merge_log(bool all);

  using record_map = std::unordered_map<stream_id, std::shared_ptr<stream_record>>;
  using path_map = std::unordered_map<std::string, std::shared_ptr<stream_record>>;
  // `building`: the registry being loaded, where fork sources are looked up (default: the
  // registry in use).
  // `store`: where to read fork sources the registry lacks (default: the writer's tables).
  std::shared_ptr<stream_record> make_record(const storage::stream_row& row, stream_position tail,
                                             bool closed, const record_map* building = nullptr,
                                             storage::stream_store* store = nullptr);
  std::vector<read_segment> inherited_segments(const storage::stream_row& row,
                                               stream_position base_seq,
                                               const record_map* building = nullptr,
                                               storage::stream_store* store = nullptr) const;
  // Whether `path` names a managed stream (options_.managed_stream_prefix).
  bool is_managed_path(std::string_view path) const;
  // The registry of the streams load_streams() found, keyed by id and by path.
  std::pair<record_map, path_map> build_registry(
      const std::vector<storage::loaded_stream>& streams);

  stream_engine_options options_;
  std::atomic<std::uint64_t> database_epoch_{0};
  std::atomic<std::uint64_t> generation_{0};  // attach_database counts it up

  // Owned by the writer thread after open().
  std::unique_ptr<sqlite::connection> write_db_;
  std::unique_ptr<sqlite::stream_tables> tables_;
  std::unique_ptr<sqlite::statement_cache> write_statements_;
  // The writer's connection as the session tables use it (over write_statements_ or pg_db_).
  std::unique_ptr<storage::sql_connection> write_sql_;
  std::unique_ptr<sqlite::read_pool> readers_;
  // The writer's tables: *tables_ on SQLite, *pg_tables_ on PostgreSQL; null while detached.
  storage::stream_store* store_ = nullptr;

  // PostgreSQL (options_.postgres_url; postgres_storage.cpp). The writer's connection and tables
  // (writer thread only), and the readers. pg_lost_ is set while the writer has no connection;
  // pg_problem_ says why (under pg_mu_, for /ready).
  bool on_postgres() const { return !options_.postgres_url.empty(); }
  // Whether the LISTEN connection is down (PostgreSQL only): other nodes' writes reach this node's
  // live readers only through it, so /ready counts it.
  bool listener_down() const;
  // The live streams whose TTL or Expires-At has passed at `now_ms`, from the table (the
  // background worker's view across nodes).
  result<std::vector<stream_id>> pg_expired_streams(std::int64_t now_ms);
  status attach_postgres();
  // Before every batch and while idle: connects again after the connection was lost, no sooner
  // than the backoff allows; the failure to answer writes with meanwhile.
  status check_postgres();
  bool read_with_postgres(std::function<void(storage::read_snapshot&)> task,
                          std::function<void(const failure&)> refuse);
  void read_postgres(std::shared_ptr<stream_record> stream, std::vector<read_segment> plan,
                     stream_position after, read_callback done);
  // The stream's record made to agree with the database: `now` is the stream's row and tail as
  // committed (nullopt: it no longer exists), `store` a connection to read fork sources with.
  // Serialized with the writer's publication by publish_mu_.
  void reconcile(stream_id id, const std::string& path,
                 const std::optional<storage::loaded_stream>& now, storage::stream_store& store);
  // Another node's notification (on the listener's thread): the streams it names, or every
  // stream with readers on this node, are refreshed on a reader thread.
  void on_hint(const postgres::wake_hint& hint);
  // Inside the writer's transaction: one NOTIFY naming the streams it touched (shared storage
  // only; nothing to do on SQLite or when it touched none).
  status notify_streams(std::vector<std::int64_t> streams);
  std::unique_ptr<postgres::connection> pg_db_;
  std::unique_ptr<postgres::listener> pg_listener_;
  std::unique_ptr<postgres::leadership> pg_leader_;
  std::string node_id_;
  std::unique_ptr<postgres::stream_tables> pg_tables_;
  std::unique_ptr<postgres::read_pool> pg_readers_;
  std::atomic<bool> pg_lost_{false};
  mutable mutex pg_mu_;
  std::string pg_problem_ GUARDED_BY(pg_mu_);
  std::chrono::steady_clock::time_point pg_next_attempt_;  // writer thread only
  std::chrono::milliseconds pg_backoff_{0};                // writer thread only
  bool pg_reconnect_ = false;  // writer thread only: a batch failed as if the server went away

  // Held while the writer publishes a batch and while a refresh reconciles a record (shared
  // storage), so the two never interleave on one record. Taken before registry_mu_.
  mutex publish_mu_;
  mutable mutex registry_mu_;
  path_map by_path_ GUARDED_BY(registry_mu_);
  record_map by_id_ GUARDED_BY(registry_mu_);

  mutable mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::pair<job, std::size_t>> queue_ GUARDED_BY(queue_mu_);
  std::size_t queued_bytes_ GUARDED_BY(queue_mu_) = 0;
  bool stopping_ GUARDED_BY(queue_mu_) = false;
  bool maintenance_requested_ GUARDED_BY(queue_mu_) = false;
  std::thread writer_;

  friend class write_context;
  status inject(std::string_view point, std::string_view path) const;

  // The database file (storage/sqlite/database_file.hpp: which file was opened, what is at the
  // path now, validation of a replacement). The writer compares them before every batch and at
  // least every 250 ms; once the file was replaced, moved or deleted, file_lost_ is set,
  // file_lost_reason_ says why and writes are refused, so ordo never writes to a file no longer
  // at its path, until it adopts a valid file at the path.
  status check_database_file();
  // Whether the storage takes writes now: the file's custody on SQLite, the connection on
  // PostgreSQL.
  status check_storage() { return on_postgres() ? check_postgres() : check_database_file(); }
  // The streams a batch's jobs changed, for notify_streams() (shared storage only).
  std::vector<std::int64_t> touched_streams(const committed_batch& b) const;
  // What a batch's jobs may change, for lock_streams() (PostgreSQL only; empty on SQLite).
  storage::stream_locks batch_locks(const std::vector<job>& jobs) const;
  // Tries to switch to the file now at the path (`st`); on success clears file_lost_.
  void adopt_database_file(const struct stat& st);
  // Pauses the readers and closes every connection to the old database.
  void detach_database();
  // Opens the database at the path (creating it at startup), rebuilds the registry from it and
  // lets the readers run on it. `adopting`: the identity validated beforehand (the file must
  // still be it), and the database gets a new epoch.
  status attach_database(std::optional<sqlite::file_identity> adopting);
  // Logs `message` at error level unless it is what was logged last (the checks repeat).
  void log_file_problem(const std::string& message);

  sqlite::database_file file_{options_.database.path};  // writer thread only
  bool attached_ = false;  // writer thread only: write_db_ and the readers' connections are open
  std::atomic<bool> file_lost_{false};
  std::string file_lost_reason_;   // writer thread only
  std::string last_file_problem_;  // writer thread only
  std::function<void()> adopted_hook_ GUARDED_BY(registry_mu_);

  std::atomic<bool> poisoned_{false};
  // ok, busy or full: how the last write batch ended (current_storage_state()).
  std::atomic<storage_state> last_batch_state_{storage_state::ok};
  std::atomic<std::size_t> tail_cache_bytes_{0};
  engine_metrics metrics_;
  // After a failed move of the append log, the log size at which the next one is tried
  // (writer thread only).
  std::int64_t merge_retry_rows_ = 0;
  std::atomic<std::uint64_t> transactions_committed_{0};
  std::atomic<std::uint64_t> jobs_committed_{0};
  std::atomic<std::uint64_t> transactions_failed_{0};
  bool purge_pending_ = true;  // writer thread only

  std::unique_ptr<sqlite::wal_syncer> syncer_;
  std::optional<committed_batch> pending_;                      // writer thread only
  std::vector<std::shared_ptr<stream_record>> deferred_wakes_;  // writer thread only
  mutex wake_executor_mu_;
  wake_executor wake_executor_ GUARDED_BY(wake_executor_mu_);
  // The writer's positions, as commit numbers (writer thread only): the last commit begun, and
  // the commit of the last batch published. published_commit_ <= flushed <= last_commit_.
  sqlite::commit_number last_commit_;
  sqlite::commit_number published_commit_;
};

}  // namespace ordo
