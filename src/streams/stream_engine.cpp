// stream_engine's front: open and stop, the public entry points that queue jobs for the writer
// (create, append, remove, submit, expire_soon), and the state it reports (storage state,
// queue depth, stats). Where the rest lives: stream_engine_internal.hpp lists the files.
//
// Thread safety: everything here may be called from any thread; the write queue is guarded by
// queue_mu_, the adopted hook by registry_mu_, the rest is atomic.
// Invariants: (1) a job enters the queue only while the engine is not stopping, and then its
//                 callback is called exactly once, by the writer;
//             (2) a job the queue refuses (stopping, or over a bound) is answered here, at once,
//                 and never reaches the writer;
//             (3) the queue's bounds always admit one job into an empty queue.
#include "streams/stream_engine.hpp"

#include "base/thread_name.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/postgres/leadership.hpp"
#include "storage/postgres/notifier.hpp"
#include "storage/postgres/read_pool.hpp"
#include "storage/postgres/stream_tables.hpp"
#include "storage/sqlite/session_tables.hpp"
#include "streams/stream_engine_internal.hpp"

namespace ordo {

// ---- open / stop -----------------------------------------------------------------------------

stream_engine::stream_engine(stream_engine_options options) : options_(std::move(options)) {}

result<std::unique_ptr<stream_engine>> stream_engine::open(stream_engine_options options) {
  std::unique_ptr<stream_engine> engine(new stream_engine(std::move(options)));
  auto* e = engine.get();
  std::function<void()> on_flushed;
  if (e->options_.wal_flush == sqlite::wal_flush::thread) {
    // The writer may be waiting for this flush or for new work, whichever comes first.
    on_flushed = [e] {
      { mutex_lock lock(e->queue_mu_); }
      e->queue_cv_.notify_one();
    };
  }
  engine->syncer_ = std::make_unique<sqlite::wal_syncer>(
      e->options_.wal_flush, [e] { return e->inject("flush", ""); }, std::move(on_flushed));
  if (e->on_postgres()) {
    if (auto s = e->attach_postgres(); !s) return std::move(s).error();
  } else {
    engine->readers_ =
        sqlite::read_pool::start(engine->options_.reader_threads, engine->options_.max_read_queue);
    if (auto s = engine->attach_database(std::nullopt); !s) return std::move(s).error();
  }
  engine->writer_ = std::thread([e = engine.get()] {
    name_this_thread("ordo-writer");
    e->writer_loop();
  });
  return engine;
}

stream_engine::~stream_engine() {
  stop();
}

void stream_engine::stop() {
  {
    mutex_lock lock(queue_mu_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  if (readers_) readers_->stop();
  // The listener hands hints to the readers: it stops first. Leadership is given up (another
  // node takes the background work at its next try).
  pg_listener_.reset();
  pg_leader_.reset();
  if (pg_readers_) pg_readers_->stop();
}

std::string_view to_string(storage_state s) {
  switch (s) {
    case storage_state::ok:
      return "ok";
    case storage_state::busy:
      return "busy";
    case storage_state::full:
      return "full";
    case storage_state::unavailable:
      return "unavailable";
    case storage_state::replaced:
      return "replaced";
    case storage_state::poisoned:
      return "poisoned";
  }
  return "ok";
}

storage_state stream_engine::current_storage_state() const {
  if (poisoned_) return storage_state::poisoned;
  if (file_lost_) return storage_state::replaced;
  if (pg_lost_) return storage_state::unavailable;
  return last_batch_state_.load();
}

std::pair<std::size_t, std::size_t> stream_engine::write_queue_depth() const {
  mutex_lock lock(queue_mu_);
  return {queue_.size(), queued_bytes_};
}

bool stream_engine::writable() const {
  return !poisoned_.load() && !file_lost_.load() && !pg_lost_.load() && !listener_down();
}

std::string stream_engine::write_refusal() const {
  if (poisoned_) return "a commit failed with an unknown outcome; writes are refused until restart";
  if (file_lost_) {
    return "the database file was replaced, moved or deleted (the log says how); writes are "
           "refused until a valid ordo database is at its path or ordo is restarted";
  }
  if (pg_lost_) {
    mutex_lock lock(pg_mu_);
    return "PostgreSQL is unreachable (" + pg_problem_ +
           "); writes are refused until ordo connects again";
  }
  if (listener_down()) {
    return "PostgreSQL is unreachable (the connection that hears other nodes' writes is down); "
           "it connects again by itself";
  }
  return "";
}

void stream_engine::on_adopted(std::function<void()> hook) {
  mutex_lock lock(registry_mu_);
  adopted_hook_ = std::move(hook);
}

writer_stats stream_engine::stats() const {
  return writer_stats{transactions_committed_.load(), jobs_committed_.load(),
                      transactions_failed_.load()};
}

status stream_engine::inject(std::string_view point, std::string_view path) const {
  if (!options_.fault_injector) return ok_v;
  return options_.fault_injector(point, path);
}

// ---- submission ------------------------------------------------------------------------------

bool stream_engine::enqueue(job j, std::size_t bytes) {
  {
    mutex_lock lock(queue_mu_);
    if (stopping_) return false;
    // Both bounds admit one job into an empty queue, so an oversized body is never starved.
    if (!queue_.empty() && (queued_bytes_ + bytes > options_.max_write_queue_bytes ||
                            queue_.size() >= options_.max_write_queue_jobs)) {
      return false;
    }
    queue_.emplace_back(j, bytes);
    queued_bytes_ += bytes;
  }
  queue_cv_.notify_one();
  return true;
}

template <class Job, class Refusal>
void stream_engine::enqueue_or_refuse(Job* j, std::size_t bytes, Refusal refusal) {
  if (enqueue(j, bytes)) return;
  auto done = std::move(j->done);
  delete j;
  done(refusal());
}

namespace {

failure write_queue_full(std::string message) {
  return make_failure(failure_kind::unavailable, "write_queue_full", std::move(message));
}

}  // namespace

void stream_engine::create(create_request request, create_callback done) {
  std::size_t bytes = request.initial_data ? request.initial_data->size() : 0;
  auto* j = new create_job{std::move(request), std::move(done), {}, {}, {}, {}, {}};
  enqueue_or_refuse(j, bytes, [] {
    create_result r;
    r.status = create_status::failed;
    r.error = write_queue_full("the server is busy writing; retry shortly");
    return r;
  });
}

void stream_engine::append(append_request request, append_callback done) {
  std::size_t bytes = request.data ? request.data->size() : 0;
  auto* j = new append_job{std::move(request), std::move(done), {}, {}, {}, nullptr, false, false};
  enqueue_or_refuse(j, bytes, [] {
    append_result r;
    r.status = append_status::overloaded;
    r.error = write_queue_full("the server has too much data waiting to be written; retry shortly");
    return r;
  });
}

void stream_engine::remove(std::string path, delete_callback done) {
  auto* j = new delete_job{std::move(path), std::move(done), {}, {}};
  enqueue_or_refuse(j, 0, [] {
    delete_result r;
    r.status = delete_status::failed;
    r.error = write_queue_full("the server is busy writing; retry shortly");
    return r;
  });
}

bool stream_engine::submit(write_job job) {
  std::size_t bytes = job.bytes;
  auto* j = new custom_job{std::move(job), {}};
  if (!enqueue(j, bytes)) {
    delete j;
    return false;
  }
  return true;
}

bool stream_engine::read_with(std::function<void(storage::read_snapshot&)> task,
                              std::function<void(const failure&)> refuse) {
  if (on_postgres()) return read_with_postgres(std::move(task), std::move(refuse));
  return readers_->submit(
      [task = std::move(task), refuse](sqlite::read_context& context) {
        auto snapshot_tx = sqlite::read_transaction::begin(context.db);
        if (!snapshot_tx) return refuse(snapshot_tx.error());
        sqlite::statement_cache_sql sql(context.statements);
        storage::read_snapshot snapshot{sql, context.database_epoch};
        task(snapshot);
      },
      std::move(refuse));
}

status stream_engine::await_durable() {
  return syncer_->wait_for_begun();
}

void stream_engine::expire_soon(const std::shared_ptr<stream_record>&) {
  // The maintenance pass finds every expired stream; wake the writer so it runs now. Requests
  // coalesce: a storm of reads of an expired stream queues one pass, not one per read.
  {
    mutex_lock lock(queue_mu_);
    if (stopping_ || maintenance_requested_) return;
    maintenance_requested_ = true;
  }
  queue_cv_.notify_one();
}

}  // namespace ordo
