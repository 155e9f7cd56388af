// Reader threads for PostgreSQL, as storage/sqlite/read_pool.hpp is for SQLite: a fixed set of
// threads, each owning one read-only connection, serving catch-up reads and session reads so
// that they never wait behind the writer.
//
// PostgreSQL may go away and come back. A thread whose connection is lost (or was never made)
// refuses the task it holds with storage_unavailable, which the HTTP layer answers 503 with
// Retry-After, and connects again for the next one, no sooner than its backoff allows (100 ms,
// doubling up to max_backoff); until then it refuses tasks at once rather than making them wait.
// A failed task is never retried here: the client retries, and the read is idempotent.
//
// Thread safety: submit() and stop() from any thread. Tasks run on a reader thread with that
// thread's read_context; a task must not keep it after it returns.
// Limits: the queue holds at most max_queued tasks; submit() refuses more (the caller answers
// 503), so a reconnect storm cannot grow memory without bound.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/postgres/stream_tables.hpp"

namespace ordo::postgres {

// What a task gets on its reader thread: the thread's connection (read-only; a task that needs a
// consistent snapshot opens its own transaction) and the stream tables on it.
struct read_context {
  connection& db;
  stream_tables& streams;
};

struct read_pool_options {
  std::string url;  // the database, as for connection::open()
  int threads = 2;
  std::size_t max_queued = 4096;
  std::chrono::milliseconds max_backoff{5000};
};

class read_pool {
 public:
  using task = std::function<void(read_context&)>;
  // Called instead of the task when its thread has no connection, or with the failure that lost
  // it.
  using refusal = std::function<void(const failure&)>;

  static std::unique_ptr<read_pool> start(read_pool_options options);
  ~read_pool();
  read_pool(const read_pool&) = delete;
  read_pool& operator=(const read_pool&) = delete;

  // false when the queue is full or the pool is stopping (neither function is then called).
  bool submit(task run, refusal refuse);
  // Refuses what is queued at once (storage_unavailable), then waits for the tasks running to
  // finish. Later calls (the destructor's) return at once.
  void stop();

  // How many of the threads hold a connection now (for /ready and /metrics).
  int connected() const;

 private:
  struct queued {
    task run;
    refusal refuse;
  };
  explicit read_pool(read_pool_options options) : options_(std::move(options)) {}
  void run_thread();

  read_pool_options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<queued> queue_;  // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  int connected_ = 0;         // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace ordo::postgres
