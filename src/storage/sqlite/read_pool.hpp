// A fixed set of reader threads, each owning one read-only connection, serving catch-up reads
// that miss the in-memory tail cache, so reads never wait behind the writer.
//
// When the database file is replaced under the server, the writer switches the pool to the new
// file: pause() waits for the tasks running on the old connections to finish (no query is cut
// off mid-flight) and keeps queued ones waiting, close_connections() lets go of the old file,
// open_connections() opens the new one and resume() lets the queue run on. Between a close and a
// successful open, tasks are refused with the failure close_connections() was given.
//
// Thread safety: submit() may be called from any thread; pause(), close_connections(),
// open_connections() and resume() from one controlling thread (the writer). Tasks run on a
// reader thread with that thread's read_context; a task must not keep it after it returns.
// Limits: the queue holds at most max_queued tasks; submit() refuses more (the caller answers
// 503), so a reconnect storm cannot grow memory without bound.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "base/thread_annotations.hpp"
#include "storage/sqlite/database.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {

// What a task gets on its reader thread: the thread's connection (for reads that need their own
// transaction, e.g. a consistent snapshot), its prepared message reader, and which database the
// connection reads: the engine's generation (one per file adopted) and the database epoch that
// prefixes the offsets it issues.
struct read_context {
  connection& db;
  message_reader& messages;
  statement_cache& statements;
  std::uint64_t generation = 0;
  std::uint64_t database_epoch = 0;
};

class read_pool {
 public:
  using task = std::function<void(read_context&)>;
  // Called instead of the task when the pool has no database open.
  using refusal = std::function<void(const failure&)>;

  // Starts the threads paused and with no connections: open_connections() and resume() next.
  static std::unique_ptr<read_pool> start(int thread_count, std::size_t max_queued);
  ~read_pool();

  // false when the queue is full or the pool is stopping (neither function is then called).
  bool submit(task run, refusal refuse);
  void stop();

  // Waits until no task is running and keeps queued tasks from starting until resume().
  void pause();
  // While paused: closes every connection; until open_connections() succeeds, tasks are
  // refused with `why`.
  void close_connections(failure why);
  // While paused: opens a connection per thread on the database `options` names.
  status open_connections(const database_options& options, std::uint64_t generation,
                          std::uint64_t database_epoch);
  void resume();

 private:
  struct slot {
    connection db;
    std::unique_ptr<message_reader> messages;
    std::unique_ptr<statement_cache> statements;
    std::unique_ptr<read_context> context;
  };
  struct queued {
    task run;
    refusal refuse;
  };

  read_pool() = default;
  void run(slot& s);

  std::size_t max_queued_ = 0;
  mutex mu_;
  std::condition_variable cv_;       // work for the reader threads
  std::condition_variable idle_cv_;  // running_ fell to zero
  std::deque<queued> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  bool paused_ GUARDED_BY(mu_) = true;  // until the first resume()
  int running_ GUARDED_BY(mu_) = 0;     // tasks running now
  // Why tasks are refused while closed.
  failure unavailable_ GUARDED_BY(mu_) = make_failure(failure_kind::unavailable,
                                                      "storage_unavailable", "no database is open");
  std::vector<std::unique_ptr<slot>> slots_;
  std::vector<std::thread> threads_;
};

}  // namespace ordo::sqlite
