// A fixed set of reader threads, each owning one read-only connection, serving catch-up reads
// that miss the in-memory tail cache, so reads never wait behind the writer.
//
// Thread safety: submit() may be called from any thread. Tasks run on a reader thread with that
// thread's read_context; a task must not keep it after it returns.
// Limits: the queue holds at most max_queued tasks; submit() refuses more (the caller answers
// 503), so a reconnect storm cannot grow memory without bound.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/result.hpp"
#include "storage/sqlite/database.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {

// What a task gets on its reader thread: the thread's connection (for reads that need their own
// transaction, e.g. a consistent snapshot) and its prepared message reader.
struct read_context {
  connection& db;
  message_reader& messages;
  statement_cache& statements;
};

class read_pool {
 public:
  using task = std::function<void(read_context&)>;

  static result<std::unique_ptr<read_pool>> start(const database_options& options, int thread_count,
                                                  std::size_t max_queued);
  ~read_pool();

  // false when the queue is full or the pool is stopping.
  bool submit(task t);
  void stop();

 private:
  read_pool() = default;
  void run(read_context& context);

  std::size_t max_queued_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<task> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::vector<connection> connections_;
  std::vector<message_reader> readers_;
  std::vector<std::unique_ptr<statement_cache>> caches_;
  std::vector<read_context> contexts_;
  std::vector<std::thread> threads_;
};

}  // namespace ordo::sqlite
