// Makes WAL commits durable: the fdatasync of the -wal after each group commit, on the writer's
// thread or pipelined on a thread of its own (--wal-flush).
//
// ordo runs the writer's connection at synchronous=NORMAL (a commit writes its frames to the
// -wal and returns; SQLite still syncs the -wal before every checkpoint and the database after
// it, so the file is never corrupt) and this class fdatasyncs the -wal after each commit, with
// its own failure handling and flush metrics. A transaction is acknowledged only once a flush
// that started after its commit has finished: acknowledged writes are exactly as durable as
// with synchronous=FULL.
//   - wal_flush::writer (the default): request() flushes before it returns, on the writer's
//     thread. No hand-off and no extra thread; appends that arrive during the flush form the
//     next batch, so batches grow with the load.
//   - wal_flush::thread: a syncer thread flushes while the writer runs the next transaction
//     (commit N's flush overlaps commit N+1's execution, the way PostgreSQL's group commit lets
//     backends queue behind one WAL flush). It pays two hand-offs per batch and runs smaller
//     batches, so it only wins where the CPU is idle and a transaction takes about as long as
//     a flush; on two cores it never won beyond a run's noise (docs/BENCHMARKS.md).
//
// Readers must not show what is committed but not yet flushed (a power failure would take it
// back after it was shown). Stream reads are bounded by the published tail, which only moves
// after the flush. Other reads call wait_for_begun() after their queries and before they reply:
// every commit their snapshot could include began before that call.
//
// A failed flush makes every later wait fail (the outcome of the commits it covered is unknown,
// as after a failed fsync in LevelDB), until attach() starts over on another database file.
//
// Thread safety: begin_commit(), request(), attach() and detach() are called by the writer
// thread only (which, with wal_flush::writer, also flushes); wait() and wait_for_begun() from any
// thread. mu_ guards everything but begun_. No thread is woken for nothing (issue 19: a wake-up
// costs two context switches): request() wakes the syncer thread only when it sleeps and has a
// flush to do, and a flush wakes only threads that wait for one. Invariants: (1) flushed_ <=
// requested_ <= begun_; (2) a commit numbered n is durable once flushed_ >= n; (3) while detached,
// request() marks commits flushed at once (SQLite's own synchronous setting is then what makes them
// durable).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

#include "base/metrics.hpp"
#include "base/result.hpp"
#include "base/strong_id.hpp"
#include "base/thread_annotations.hpp"

namespace ordo::sqlite {

// The number of a commit, in the order commits began (1 is the first; 0 is "none"). Its own
// type: a commit number is neither a stream position nor a count.
using commit_number = strong_id<struct commit_number_tag, std::uint64_t>;

// Where the -wal is flushed (--wal-flush).
enum class wal_flush {
  writer,  // by request(), on the committing thread
  thread,  // on the syncer's own thread, overlapping the next transaction
};

class wal_syncer {
 public:
  // `before_flush` runs on the flushing thread before each flush (fault injection in tests); a
  // failure it returns is taken as a failed flush. `on_flushed` runs on the syncer thread after
  // each flush, without the syncer's lock (the writer waits for it or for new work); never with
  // wal_flush::writer. Either may be empty.
  explicit wal_syncer(wal_flush where = wal_flush::writer,
                      std::function<status()> before_flush = {},
                      std::function<void()> on_flushed = {});
  ~wal_syncer();
  wal_syncer(const wal_syncer&) = delete;
  wal_syncer& operator=(const wal_syncer&) = delete;

  // Starts flushing the -wal at `wal_path` after each commit (the file is opened at the first
  // flush, and its directory synced once then). Clears an earlier flush failure.
  void attach(std::string wal_path);
  // Waits for the flushes asked for so far, closes the -wal and flushes no more: commits count
  // as durable when they return.
  void detach();
  bool attached() const;

  // Just before COMMIT: the number of the commit about to run.
  commit_number begin_commit();
  // After COMMIT returned (whatever its outcome): flush everything up to commit `number`; with
  // wal_flush::writer, before returning.
  void request(commit_number number);
  // Waits until commit `number` is durable; the flush failure otherwise.
  status wait(commit_number number);
  // Whether wait(number) would return at once.
  bool settled(commit_number number) const;
  // Waits until every commit begun before the call is durable.
  status wait_for_begun();
  // How long each fdatasync of the -wal took (/metrics: ordo_fsync_duration_seconds).
  const metrics::histogram& flush_durations() const { return flush_durations_; }

 private:
  void run();
  // Flushes up to requested_, if anything is to flush, and records the outcome.
  void flush_requested() EXCLUDES(mu_);
  status flush(const std::string& path);

  const wal_flush where_;
  std::function<status()> before_flush_;
  std::function<void()> on_flushed_;
  std::atomic<commit_number::rep_type> begun_{0};  // the last commit_number handed out
  mutable mutex mu_;
  std::condition_variable work_;     // the syncer thread waits here for a flush to do
  std::condition_variable changed_;  // wait() and detach() wait here for a flush to end
  bool syncer_asleep_ GUARDED_BY(mu_) = false;
  int waiting_ GUARDED_BY(mu_) = 0;  // threads in wait() or detach()
  std::string wal_path_ GUARDED_BY(mu_);
  bool attached_ GUARDED_BY(mu_) = false;
  int fd_ = -1;  // syncer thread; closed by detach() once no flush is running
  bool flushing_ GUARDED_BY(mu_) = false;
  commit_number requested_ GUARDED_BY(mu_);
  commit_number flushed_ GUARDED_BY(mu_);
  std::optional<failure> error_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  metrics::histogram flush_durations_{metrics::latency_bounds_ns(),
                                      metrics::k_nanoseconds_per_second};
  std::thread thread_;  // wal_flush::thread only
};

}  // namespace ordo::sqlite
