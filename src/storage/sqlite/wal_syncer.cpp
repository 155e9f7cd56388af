#include "storage/sqlite/wal_syncer.hpp"

#include <chrono>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/thread_name.hpp"
#include "storage/sqlite/connection.hpp"

namespace ordo::sqlite {

namespace {

failure flush_failure(const std::string& what, const std::string& path, int error) {
  return make_failure(failure_kind::unavailable, std::string(k_storage_io_error),
                      what + " '" + path + "' failed (" + std::strerror(error) +
                          "); the outcome of the last commits is unknown");
}

}  // namespace

wal_syncer::wal_syncer(wal_flush where, std::function<status()> before_flush,
                       std::function<void()> on_flushed)
    : where_(where), before_flush_(std::move(before_flush)), on_flushed_(std::move(on_flushed)) {
  if (where_ == wal_flush::thread) {
    thread_ = std::thread([this] {
      name_this_thread("ordo-wal-sync");
      run();
    });
  }
}

wal_syncer::~wal_syncer() {
  {
    mutex_lock lock(mu_);
    stopping_ = true;
  }
  work_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

void wal_syncer::attach(std::string wal_path) {
  mutex_lock lock(mu_);
  wal_path_ = std::move(wal_path);
  attached_ = true;
  error_.reset();
  requested_ = flushed_ = commit_number{begun_.load()};
}

void wal_syncer::detach() {
  mutex_lock lock(mu_);
  ++waiting_;
  lock.wait(changed_,
            [&]() REQUIRES(mu_) { return !flushing_ && (flushed_ >= requested_ || error_); });
  --waiting_;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  attached_ = false;
  // Commits whose flush failed stay failed for wait(); later ones count as durable at once.
}

bool wal_syncer::attached() const {
  mutex_lock lock(mu_);
  return attached_;
}

commit_number wal_syncer::begin_commit() {
  return commit_number{++begun_};
}

void wal_syncer::request(commit_number number) {
  bool flush_here = false;
  bool wake_syncer = false;
  bool wake_waiters = false;
  {
    mutex_lock lock(mu_);
    requested_ = std::max(requested_, number);
    if (attached_ && !error_ && where_ == wal_flush::writer) {
      flush_here = true;
    } else if (attached_ && !error_) {
      // Busy, it looks for more work before it sleeps again.
      wake_syncer = syncer_asleep_ && requested_ > flushed_;
    } else if (!error_ && number > flushed_) {
      flushed_ = number;
      wake_waiters = waiting_ > 0;
    }
  }
  if (flush_here) flush_requested();
  if (wake_syncer) work_.notify_one();
  if (wake_waiters) changed_.notify_all();
}

status wal_syncer::wait(commit_number number) {
  mutex_lock lock(mu_);
  ++waiting_;
  lock.wait(changed_, [&]() REQUIRES(mu_) { return flushed_ >= number || error_; });
  --waiting_;
  if (flushed_ >= number) return ok_v;
  return *error_;
}

bool wal_syncer::settled(commit_number number) const {
  mutex_lock lock(mu_);
  return flushed_ >= number || error_;
}

status wal_syncer::wait_for_begun() {
  return wait(commit_number{begun_.load()});
}

void wal_syncer::run() {
  mutex_lock lock(mu_);
  for (;;) {
    syncer_asleep_ = true;
    lock.wait(work_, [&]() REQUIRES(mu_) {
      return stopping_ || (attached_ && !error_ && requested_ > flushed_);
    });
    syncer_asleep_ = false;
    if (stopping_) return;
    lock.unlock();
    flush_requested();
    if (on_flushed_) on_flushed_();
    lock.lock();
  }
}

void wal_syncer::flush_requested() {
  commit_number target;
  std::string path;
  {
    mutex_lock lock(mu_);
    if (!attached_ || error_ || requested_ <= flushed_) return;
    // One flush covers every commit that returned before it starts.
    target = requested_;
    path = wal_path_;
    flushing_ = true;
  }
  status flushed = flush(path);
  mutex_lock lock(mu_);
  flushing_ = false;
  if (flushed) {
    flushed_ = std::max(flushed_, target);
  } else {
    error_ = std::move(flushed).error();
  }
  if (waiting_ > 0) changed_.notify_all();
}

status wal_syncer::flush(const std::string& path) {
  status flushed = ok_v;
  if (before_flush_) flushed = before_flush_();
  if (flushed && fd_ < 0) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      flushed = flush_failure("opening the write-ahead log", path, errno);
    } else {
      // The -wal's directory entry must be durable too, once (SQLite syncs the directory at a
      // journal's first sync for the same reason).
      std::filesystem::path parent = std::filesystem::path(path).parent_path();
      const std::string dir = parent.empty() ? std::string(".") : parent.string();
      int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dir_fd < 0 || ::fsync(dir_fd) != 0) {
        flushed = flush_failure("syncing the directory", dir, errno);
      }
      if (dir_fd >= 0) ::close(dir_fd);
    }
  }
  if (!flushed) return flushed;
  auto started = std::chrono::steady_clock::now();
  if (::fdatasync(fd_) != 0) return flush_failure("flushing the write-ahead log", path, errno);
  flush_durations_.observe(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()));
  return ok_v;
}

}  // namespace ordo::sqlite
