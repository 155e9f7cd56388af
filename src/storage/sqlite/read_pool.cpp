#include "storage/sqlite/read_pool.hpp"

#include <string>

#include "base/thread_name.hpp"

namespace ordo::sqlite {

std::unique_ptr<read_pool> read_pool::start(int thread_count, std::size_t max_queued) {
  std::unique_ptr<read_pool> pool(new read_pool());
  pool->max_queued_ = max_queued;
  for (int i = 0; i < thread_count; ++i)
    pool->slots_.push_back(std::make_unique<slot>());
  for (std::size_t i = 0; i < pool->slots_.size(); ++i) {
    pool->threads_.emplace_back([p = pool.get(), s = pool->slots_[i].get(), i] {
      name_this_thread("ordo-read-" + std::to_string(i));
      p->run(*s);
    });
  }
  return pool;
}

read_pool::~read_pool() {
  stop();
}

bool read_pool::submit(task run, refusal refuse) {
  {
    mutex_lock lock(mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back({std::move(run), std::move(refuse)});
  }
  cv_.notify_one();
  return true;
}

void read_pool::stop() {
  {
    mutex_lock lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    paused_ = false;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void read_pool::pause() {
  mutex_lock lock(mu_);
  paused_ = true;
  lock.wait(idle_cv_, [&]() REQUIRES(mu_) { return running_ == 0; });
}

void read_pool::close_connections(failure why) {
  {
    mutex_lock lock(mu_);
    unavailable_ = std::move(why);
  }
  for (auto& s : slots_) {
    // Statements before their connection.
    s->context.reset();
    s->statements.reset();
    s->messages.reset();
    s->db = connection();
  }
}

status read_pool::open_connections(const database_options& options, std::uint64_t generation,
                                   std::uint64_t database_epoch) {
  for (auto& s : slots_) {
    auto db = open_read_connection(options);
    if (!db) return std::move(db).error();
    auto reader = message_reader::prepare(*db);
    if (!reader) return std::move(reader).error();
    s->db = std::move(*db);
    s->messages = std::make_unique<message_reader>(std::move(*reader));
    s->statements = std::make_unique<statement_cache>(s->db);
    s->context = std::make_unique<read_context>(
        read_context{s->db, *s->messages, *s->statements, generation, database_epoch});
  }
  return ok_v;
}

void read_pool::resume() {
  {
    mutex_lock lock(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void read_pool::run(slot& s) {
  for (;;) {
    queued q;
    failure refused;
    bool open = false;
    {
      mutex_lock lock(mu_);
      lock.wait(cv_, [&]() REQUIRES(mu_) { return stopping_ || (!paused_ && !queue_.empty()); });
      // Drain queued work before stopping so every submitted task is answered.
      if (queue_.empty()) return;
      q = std::move(queue_.front());
      queue_.pop_front();
      open = s.context != nullptr;
      if (!open) refused = unavailable_;
      ++running_;
    }
    if (open) {
      q.run(*s.context);
    } else {
      q.refuse(refused);
    }
    {
      mutex_lock lock(mu_);
      if (--running_ == 0) idle_cv_.notify_all();
    }
  }
}

}  // namespace ordo::sqlite
