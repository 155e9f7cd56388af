// The stream engine: create / append / close / delete / read Durable Streams, durably.
//
// Write path (DESIGN.md, "Threads and the write path"): every mutation becomes a job in one
// queue. The writer thread takes everything queued, runs it as one transaction with a SAVEPOINT
// per job (a failing job fails alone and its caller gets the error), commits with one fsync,
// then publishes each job's effects to the stream records (tail cache, wake-ups) and completes
// the callers. Offsets are assigned there, inside the committing transaction, and nowhere else.
// A commit whose outcome is unknown (an I/O error) makes every later write fail with 503 until
// restart, as LevelDB does after a failed fsync.
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
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/result.hpp"
#include "storage/sqlite/database.hpp"
#include "storage/sqlite/read_pool.hpp"
#include "storage/sqlite/stream_tables.hpp"
#include "streams/offset.hpp"
#include "streams/stream_record.hpp"

namespace ordo {

struct removal;

struct stream_engine_options {
  sqlite::database_options database;
  int reader_threads = 2;
  std::size_t max_read_queue = 4096;              // catch-up reads waiting for a reader thread
  std::size_t read_chunk_bytes = 1 << 20;         // most bytes in one catch-up response
  std::size_t tail_cache_bytes = 256 << 10;       // per stream
  std::size_t max_write_queue_bytes = 256 << 20;  // queued append bytes before 503
  std::size_t max_write_queue_jobs = 100'000;     // queued jobs of any size before 503
  std::size_t max_batch_bytes = 64 << 20;         // most payload bytes in one transaction
  std::size_t max_batch_jobs = 4096;              // most jobs in one transaction
  std::chrono::milliseconds maintenance_interval{500};  // expiry sweep, TTL flush, purge
  int purge_batch_messages = 10000;                     // messages deleted per janitor transaction

  // Fault injection for tests: called by the writer at named points ("batch.begin",
  // "append.after_insert", "create.after_insert", "commit") with the job's stream path (empty
  // for batch-wide points). A failure is treated exactly like a storage failure at that point.
  // Unset in production.
  std::function<status(std::string_view point, std::string_view path)> fault_injector;
};

// Counters of the writer's work, for tests and metrics.
struct writer_stats {
  std::uint64_t transactions_committed = 0;
  std::uint64_t jobs_committed = 0;
  std::uint64_t transactions_failed = 0;
};

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
  std::uint64_t tail = 0;
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
  std::uint64_t tail = 0;
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
  std::int64_t stream_id = 0;
  std::optional<sqlite::stream_row> created;  // for create
  std::uint64_t after = 0;  // append: the position before the message; prune: pruned up to
  message_ptr message;      // for append
};

// What a custom write job (stream_engine::submit) may do. Valid only while the job runs on the
// writer thread, inside its own savepoint; everything it does commits or rolls back with the
// job, and the stream changes it makes are published (tail caches, wake-ups) after commit.
class write_context {
 public:
  sqlite::connection& db() { return db_; }
  sqlite::statement_cache& statements() { return statements_; }
  std::int64_t now_ms() const { return now_ms_; }
  std::uint64_t database_epoch() const { return database_epoch_; }

  // Creates a stream at any path, including the reserved paths of managed streams.
  result<std::int64_t> create_stream(const std::string& path, const std::string& content_type);
  // Appends one message; returns the stream's new tail position.
  result<std::uint64_t> append(std::int64_t stream_id, std::string data);
  // Closes a stream (idempotent).
  status close(std::int64_t stream_id);
  // The id of the live stream at `path`, if any.
  result<std::optional<std::int64_t>> find_stream(std::string_view path);
  // The offset a message appended to the stream now would end at (its position and prefix).
  result<stream_offset> next_offset(std::int64_t stream_id);
  // The offset prefix of a stream's family.
  std::uint64_t offset_prefix(std::int64_t incarnation) const;
  // Retention: removes the stream's messages at positions <= upto.
  status prune(std::int64_t stream_id, std::uint64_t upto);
  // Up to `limit` of the stream's oldest remaining messages.
  result<std::vector<sqlite::message_row>> oldest_messages(std::int64_t stream_id,
                                                           std::size_t limit);
  // A named point where tests may inject a failure (stream_engine_options::fault_injector).
  status checkpoint(std::string_view point);

 private:
  friend class stream_engine;
  write_context(const stream_engine& engine, sqlite::connection& db,
                sqlite::statement_cache& statements, sqlite::stream_tables& tables,
                std::uint64_t epoch, std::int64_t now_ms, std::vector<stream_effect>& effects)
      : engine_(engine),
        db_(db),
        statements_(statements),
        tables_(tables),
        database_epoch_(epoch),
        now_ms_(now_ms),
        effects_(effects) {}

  const stream_engine& engine_;
  sqlite::connection& db_;
  sqlite::statement_cache& statements_;
  sqlite::stream_tables& tables_;
  std::uint64_t database_epoch_;
  std::int64_t now_ms_;
  std::vector<stream_effect>& effects_;
};

// A unit of work for the writer, submitted by other modules (sessions, change feed).
struct write_job {
  // Runs inside a savepoint. false: roll the job back (it decided to refuse; nothing is kept).
  std::function<bool(write_context&)> run;
  // Called once on the writer thread: with nullopt after the transaction committed (or after
  // run() returned false), or with the failure that stopped the whole transaction.
  std::function<void(const std::optional<failure>&)> done;
  std::size_t bytes = 0;  // payload size, for the write queue's byte bound
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
  std::shared_ptr<stream_record> find_by_id(std::int64_t id) const;

  void create(create_request request, create_callback done);
  void append(append_request request, append_callback done);
  void remove(std::string path, delete_callback done);
  // Queues a custom job; false (and `done` is not called) when the write queue is full.
  bool submit(write_job job);
  // Runs `task` on a reader thread with its own read-only connection; false when the read queue
  // is full (`task` is not run).
  bool read_with(std::function<void(sqlite::read_context&)> task);
  // Reads messages at positions (after, tail], at most read_chunk_bytes (at least one message).
  void read(std::shared_ptr<stream_record> stream, std::uint64_t after, read_callback done);
  // Asks the writer to expire a stream whose TTL or Expires-At has passed.
  void expire_soon(const std::shared_ptr<stream_record>& stream);

  std::uint64_t database_epoch() const { return database_epoch_; }
  // false once a commit of unknown outcome, or the database file being replaced, moved or
  // deleted under the server, has stopped all writes (until restart).
  bool writable() const;
  // Streams clients created (managed streams are not counted).
  std::size_t stream_count() const;
  writer_stats stats() const;
  const stream_engine_options& options() const { return options_; }

 private:
  struct create_job;
  struct append_job;
  struct delete_job;
  struct custom_job;
  using job = std::variant<create_job*, append_job*, delete_job*, custom_job*>;

  explicit stream_engine(stream_engine_options options);

  bool enqueue(job j, std::size_t bytes);
  void writer_loop();
  // On the writer thread after the last write at stop: moves the WAL into the database file.
  void checkpoint_wal();
  void run_batch(std::vector<job>& batch);
  // Each job runs inside its own savepoint; false means nothing of it may be kept.
  bool run_create(create_job& j);
  bool run_append(append_job& j);
  bool run_delete(delete_job& j);
  // After commit, in job order.
  void publish_create(create_job& j);
  void publish_append(append_job& j);
  void publish_removals(const std::vector<removal>& removals);
  void publish_effects(const std::vector<stream_effect>& effects);
  void run_maintenance();
  bool run_purge_step();

  std::shared_ptr<stream_record> make_record(const sqlite::stream_row& row, std::uint64_t tail,
                                             bool closed);
  std::vector<read_segment> inherited_segments(const sqlite::stream_row& row,
                                               std::uint64_t base_seq) const;

  stream_engine_options options_;
  std::uint64_t database_epoch_ = 0;

  // Owned by the writer thread after open().
  std::unique_ptr<sqlite::connection> write_db_;
  std::unique_ptr<sqlite::stream_tables> tables_;
  std::unique_ptr<sqlite::statement_cache> write_statements_;
  std::unique_ptr<sqlite::read_pool> readers_;

  mutable std::mutex registry_mu_;
  std::unordered_map<std::string, std::shared_ptr<stream_record>> by_path_;  // registry_mu_
  std::unordered_map<std::int64_t, std::shared_ptr<stream_record>> by_id_;   // registry_mu_

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<std::pair<job, std::size_t>> queue_;  // guarded by queue_mu_
  std::size_t queued_bytes_ = 0;                   // guarded by queue_mu_
  bool stopping_ = false;                          // guarded by queue_mu_
  bool maintenance_requested_ = false;             // guarded by queue_mu_
  std::thread writer_;

  friend class write_context;
  status inject(std::string_view point, std::string_view path) const;

  // The database file as opened (device, inode). The writer compares it with what is at the
  // path now before every batch and at least every 250 ms; once the file was replaced, moved
  // or deleted, file_lost_ holds the reason and writes are refused, so ordo never writes to a
  // file no longer at its path.
  status check_database_file();
  dev_t file_device_ = 0;
  ino_t file_inode_ = 0;
  std::atomic<bool> file_lost_{false};
  std::string file_lost_reason_;  // writer thread only; set once

  std::atomic<bool> poisoned_{false};
  std::atomic<std::uint64_t> transactions_committed_{0};
  std::atomic<std::uint64_t> jobs_committed_{0};
  std::atomic<std::uint64_t> transactions_failed_{0};
  bool purge_pending_ = true;  // writer thread only
};

}  // namespace ordo
