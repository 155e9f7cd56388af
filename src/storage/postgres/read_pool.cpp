#include "storage/postgres/read_pool.hpp"

#include <spdlog/spdlog.h>

#include <optional>

#include "base/thread_name.hpp"

namespace ordo::postgres {

namespace {
constexpr std::chrono::milliseconds k_first_backoff{100};
}

std::unique_ptr<read_pool> read_pool::start(read_pool_options options) {
  std::unique_ptr<read_pool> pool(new read_pool(std::move(options)));
  for (int i = 0; i < std::max(1, pool->options_.threads); ++i) {
    pool->threads_.emplace_back([p = pool.get(), i] {
      name_this_thread("ordo-pg-read-" + std::to_string(i));
      p->run_thread();
    });
  }
  return pool;
}

read_pool::~read_pool() {
  stop();
}

bool read_pool::submit(task run, refusal refuse) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queue_.size() >= options_.max_queued) return false;
    queue_.push_back({std::move(run), std::move(refuse)});
  }
  cv_.notify_one();
  return true;
}

void read_pool::stop() {
  std::deque<queued> left;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;  // the first call answers the queue and joins the threads
    stopping_ = true;
    left.swap(queue_);
  }
  cv_.notify_all();
  // What is queued is answered at once; tasks already running finish first.
  const failure stopping = make_failure(
      failure_kind::unavailable, std::string(k_storage_unavailable), "the server is stopping");
  for (auto& q : left)
    q.refuse(stopping);
  for (auto& t : threads_)
    t.join();
  threads_.clear();
}

int read_pool::connected() const {
  std::lock_guard lock(mu_);
  return connected_;
}

void read_pool::run_thread() {
  using clock = std::chrono::steady_clock;
  const std::string where = redacted(options_.url);
  std::optional<connection> db;
  std::optional<failure> down;  // why this thread has no connection
  auto backoff = k_first_backoff;
  auto next_try = clock::now();
  auto set_connected = [&](bool up) {
    std::lock_guard lock(mu_);
    connected_ += up ? 1 : -1;
  };
  for (;;) {
    queued q;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      q = std::move(queue_.front());
      queue_.pop_front();
    }
    if (!db && clock::now() >= next_try) {
      auto opened =
          connection::open(options_.url, {.read_only = true, .application_name = "ordo reader"});
      if (opened) {
        db.emplace(std::move(*opened));
        set_connected(true);
        if (down) spdlog::info("reader connection to {} is back", where);
        down.reset();
        backoff = k_first_backoff;
      } else {
        if (!down)
          spdlog::warn("reader connection to {} failed: {}", where, opened.error().message);
        down = std::move(opened).error();
        next_try = clock::now() + backoff;
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
    }
    if (!db) {
      q.refuse(*down);
      continue;
    }
    stream_tables streams(*db);
    read_context ctx{*db, streams};
    q.run(ctx);
    // A task that met a lost connection reported it to its caller; the next one reconnects.
    if (db->lost()) {
      down = make_failure(failure_kind::unavailable, std::string(k_storage_unavailable),
                          "the reader connection to " + where + " was lost");
      spdlog::warn("{}; reconnecting", down->message);
      db.reset();
      set_connected(false);
      next_try = clock::now();
    }
  }
  if (db) set_connected(false);
}

}  // namespace ordo::postgres
