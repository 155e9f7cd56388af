#include "storage/sqlite/read_pool.hpp"

namespace ordo::sqlite {

result<std::unique_ptr<read_pool>> read_pool::start(const database_options& options,
                                                    int thread_count, std::size_t max_queued) {
  std::unique_ptr<read_pool> pool(new read_pool());
  pool->max_queued_ = max_queued;
  pool->connections_.reserve(static_cast<std::size_t>(thread_count));
  pool->readers_.reserve(static_cast<std::size_t>(thread_count));
  for (int i = 0; i < thread_count; ++i) {
    auto db = open_read_connection(options);
    if (!db) return std::move(db).error();
    pool->connections_.push_back(std::move(*db));
    auto reader = message_reader::prepare(pool->connections_.back());
    if (!reader) return std::move(reader).error();
    pool->readers_.push_back(std::move(*reader));
  }
  pool->contexts_.reserve(pool->readers_.size());
  for (std::size_t i = 0; i < pool->readers_.size(); ++i) {
    pool->caches_.push_back(std::make_unique<statement_cache>(pool->connections_[i]));
    pool->contexts_.push_back(
        read_context{pool->connections_[i], pool->readers_[i], *pool->caches_.back()});
  }
  for (auto& context : pool->contexts_) {
    pool->threads_.emplace_back([p = pool.get(), &context] { p->run(context); });
  }
  return pool;
}

read_pool::~read_pool() {
  stop();
}

bool read_pool::submit(task t) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(t));
  }
  cv_.notify_one();
  return true;
}

void read_pool::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void read_pool::run(read_context& context) {
  for (;;) {
    task t;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      // Drain queued work before stopping so every submitted task is answered.
      if (queue_.empty()) return;
      t = std::move(queue_.front());
      queue_.pop_front();
    }
    t(context);
  }
}

}  // namespace ordo::sqlite
