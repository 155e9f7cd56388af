// The group-commit writer: one thread takes everything queued, runs it as one transaction with
// a SAVEPOINT per job (a failing job fails alone), commits it, and asks the WAL syncer to flush
// the commit (storage/sqlite/wal_syncer.hpp): by default on this thread, so appends that arrive
// meanwhile form the next batch; with --wal-flush thread on the syncer's, while the next batch's
// transaction runs. A batch is published (tail caches, registry) and its callers answered once
// its flush is done, each network thread's callers in one hand-off (base/handoff_batch.hpp),
// and the readers it wakes are woken last, on the wake executor, if it has any. A commit or
// flush of unknown outcome poisons the writer: every later write fails until restart.
//
// Thread safety: the writer thread only, except set_wake_executor() (any thread, under
// wake_executor_mu_) and the wake rounds (on the wake executor). The queue is shared with the
// submitting threads under queue_mu_; pending_ and deferred_wakes_ are the writer's alone.
// Invariants: (1) published <= flushed <= committed: no batch is published or answered before
//                 its commit is on disk;
//             (2) batches are published and answered in commit order (at most one waits in
//                 pending_, and it is completed before any later batch); advance_published()
//                 checks (1) and (2) for every batch and poisons the writer if either breaks;
//             (3) every job's callback is called exactly once, after its batch completed;
//             (4) once poisoned, no batch is begun until restart.
#include "streams/stream_engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <string>

#include "base/handoff_batch.hpp"
#include "storage/postgres/connection.hpp"
#include "streams/stream_engine_internal.hpp"

namespace ordo {

using engine_internal::wall_ms;

// ---- the writer ------------------------------------------------------------------------------

// How often the idle writer checks that the database file is still the one it opened (it also
// checks before every batch); /ready reports a lost file within this, well under a second.
constexpr std::chrono::milliseconds k_file_check_interval{250};

void stream_engine::writer_loop() {
  using clock = std::chrono::steady_clock;
  auto next_maintenance = clock::now() + options_.maintenance_interval;
  auto next_file_check = clock::now();
  for (;;) {
    std::vector<job> batch;
    bool maintenance_requested = false;
    bool stopping = false;
    if (clock::now() >= next_file_check) {
      // Also while idle, so /ready reports a lost file (or PostgreSQL back again) within a
      // second, before any write.
      (void)check_storage();
      next_file_check = clock::now() + k_file_check_interval;
    }
    {
      mutex_lock lock(queue_mu_);
      // With a batch waiting for its flush, new work runs while the disk flushes; the batch
      // is completed as soon as its flush is done, or after the new work's transaction.
      lock.wait_until(queue_cv_, std::min(next_maintenance, next_file_check),
                      [&]() REQUIRES(queue_mu_) {
                        return stopping_ || maintenance_requested_ || !queue_.empty() ||
                               (pending_ && syncer_->settled(pending_->commit));
                      });
      stopping = stopping_;
      maintenance_requested = std::exchange(maintenance_requested_, false);
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < options_.max_batch_jobs) {
        auto& [j, b] = queue_.front();
        if (!batch.empty() && bytes + b > options_.max_batch_bytes) break;
        bytes += b;
        queued_bytes_ -= b;
        batch.push_back(j);
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      run_batch(batch);
      merge_log(false);
    } else {
      complete_pending();
    }
    auto now = clock::now();
    if (maintenance_requested || now >= next_maintenance || stopping) {
      run_maintenance();
      next_maintenance = now + options_.maintenance_interval;
    }
    if (stopping) {
      complete_pending();
      mutex_lock lock(queue_mu_);
      if (queue_.empty()) break;
      continue;
    }
    if (purge_pending_) {
      mutex_lock lock(queue_mu_);
      if (!queue_.empty()) continue;
    }
    if (purge_pending_) purge_pending_ = run_purge_step();
  }
  merge_log(true);
  checkpoint_wal();
}

void stream_engine::checkpoint_wal() {
  // After a commit of unknown outcome the WAL is left to the recovery of the next open.
  if (poisoned_ || !write_db_) return;
  // TRUNCATE copies every committed page into ordo.db and empties ordo.db-wal, so a stopped
  // server leaves one self-contained file (a plain copy of it is a complete backup).
  auto busy = write_db_->query_int64("PRAGMA wal_checkpoint(TRUNCATE)");
  if (!busy) {
    spdlog::warn("WAL checkpoint at stop failed: {}", busy.error().message);
  } else if (busy->value_or(0) != 0) {
    spdlog::warn("WAL checkpoint at stop was incomplete: another connection is still reading");
  }
}

void stream_engine::run_batch(std::vector<job>& batch) {
  std::vector<bool> ok(batch.size(), false);
  committed_batch b{std::move(batch), std::move(ok), std::nullopt, {}};
  std::optional<failure>& batch_failure = b.error;
  if (auto s = inject("batch.begin", ""); !s) {
    batch_failure = std::move(s).error();
  } else if (poisoned_) {
    batch_failure = make_failure(
        failure_kind::unavailable, "storage_poisoned",
        "an earlier commit failed with an unknown outcome; writes are refused until ordo is "
        "restarted and the database is checked");
  } else if (auto s = check_storage(); !s) {
    batch_failure = std::move(s).error();
  } else if (auto s = store_->begin(); !s) {
    batch_failure = std::move(s).error();
  } else if (auto s = store_->lock_streams(batch_locks(b.jobs)); !s) {
    batch_failure = std::move(s).error();
  }

  if (!batch_failure) {
    for (std::size_t i = 0; i < b.jobs.size(); ++i) {
      // The batch before this one is answered as soon as its flush is done, not only after
      // this one commits: its writers wait no longer than the disk.
      complete_pending_if_flushed();
      // A job that only appends lets the store hold its savepoint and writes back (PostgreSQL:
      // one statement for the whole batch's messages instead of several per append).
      status opened = std::holds_alternative<append_job*>(b.jobs[i])
                          ? store_->savepoint_for_appends()
                          : store_->savepoint();
      if (!opened) {
        batch_failure = std::move(opened).error();
        break;
      }
      b.ok[i] = std::visit(
          [&](auto* j) -> bool {
            using T = std::remove_pointer_t<decltype(j)>;
            if constexpr (std::is_same_v<T, create_job>) {
              return run_create(*j);
            } else if constexpr (std::is_same_v<T, append_job>) {
              return run_append(*j);
            } else if constexpr (std::is_same_v<T, delete_job>) {
              return run_delete(*j);
            } else {
              write_context ctx(*this, *write_sql_, *store_, database_epoch_, wall_ms(),
                                j->effects);
              status kept = j->job.run(ctx);
              if (kept) return true;
              j->refused = std::move(kept).error();
              j->effects.clear();
              return false;
            }
          },
          b.jobs[i]);
      auto s = b.ok[i] ? store_->release_savepoint() : store_->rollback_to_savepoint();
      if (!b.ok[i] && s) s = store_->release_savepoint();
      if (!s) {
        batch_failure = std::move(s).error();
        break;
      }
    }
    if (!batch_failure) {
      status s = store_->flush();
      if (s) s = notify_streams(touched_streams(b));
      if (s) s = inject("commit", "");
      if (s) s = commit_transaction(b.commit);
      if (!s) {
        batch_failure = std::move(s).error();
        poison_if_unknown(*batch_failure);  // an injected failure too
      }
    }
    if (batch_failure) (void)store_->rollback();
  }

  // The batch before this one was flushed while this one ran: it goes first, in order.
  complete_pending();
  // Flushed already (by this thread, with wal_flush::writer) or failed: answered now.
  if (batch_failure || !syncer_->attached() || syncer_->settled(b.commit)) {
    complete_batch(b);
  } else {
    pending_ = std::move(b);
  }
}

storage::stream_locks stream_engine::batch_locks(const std::vector<job>& jobs) const {
  storage::stream_locks out;
  if (!on_postgres()) return out;  // the writer is alone: nothing to lock
  // A stream this node knows is locked by id; anything else by path, which finds the stream the
  // job will find. Creates and deletes always go by path: they look the path up, and may remove
  // the stream there and the sources it forked from.
  auto by_path_or_id = [&](const std::string& path) {
    if (auto record = find(path)) {
      out.ids.push_back(record->config().id);
    } else {
      out.paths.push_back(path);
    }
  };
  for (const job& j : jobs) {
    if (auto* const* a = std::get_if<append_job*>(&j)) {
      by_path_or_id((*a)->req.path);
    } else if (auto* const* c = std::get_if<create_job*>(&j)) {
      out.paths.push_back((*c)->req.path);
      if ((*c)->req.fork_source_path) out.paths.push_back(*(*c)->req.fork_source_path);
    } else if (auto* const* d = std::get_if<delete_job*>(&j)) {
      out.paths.push_back((*d)->path);
    } else if (auto* const* c = std::get_if<custom_job*>(&j)) {
      for (const std::string& path : (*c)->job.streams)
        by_path_or_id(path);
    }
  }
  return out;
}

std::vector<std::int64_t> stream_engine::touched_streams(const committed_batch& b) const {
  std::vector<std::int64_t> out;
  if (!storage_shared()) return out;  // nobody else to tell
  for (std::size_t i = 0; i < b.jobs.size(); ++i) {
    if (!b.ok[i]) continue;
    std::visit(
        [&](auto* j) {
          using T = std::remove_pointer_t<decltype(j)>;
          if constexpr (std::is_same_v<T, create_job>) {
            if (j->created) out.push_back(j->created->id.value());
            for (const removal& r : j->removals)
              out.push_back(r.id.value());
          } else if constexpr (std::is_same_v<T, append_job>) {
            if (j->wrote) out.push_back(j->stream.value());
          } else if constexpr (std::is_same_v<T, delete_job>) {
            for (const removal& r : j->removals)
              out.push_back(r.id.value());
          } else {
            for (const stream_effect& e : j->effects)
              out.push_back(e.stream.value());
          }
        },
        b.jobs[i]);
  }
  return out;
}

void stream_engine::complete_pending_if_flushed() {
  if (pending_ && syncer_->settled(pending_->commit)) complete_pending();
}

void stream_engine::complete_pending() {
  if (!pending_) return;
  committed_batch b = std::move(*pending_);
  pending_.reset();
  complete_batch(b);
}

void stream_engine::complete_batch(committed_batch& b) {
  // A refresh (shared storage) does not reconcile a record while the batch publishes to it.
  mutex_lock publishing(publish_mu_);
  std::optional<failure>& batch_failure = b.error;
  if (!batch_failure && b.commit != sqlite::commit_number{}) {
    if (auto s = await_flush(b.commit); !s) {
      batch_failure = std::move(s).error();
    } else if (auto p = advance_published(b.commit); !p) {
      batch_failure = std::move(p).error();
    }
  }
  if (batch_failure) {
    ++transactions_failed_;
    if (on_postgres() &&
        (batch_failure->code == postgres::k_storage_unavailable ||
         batch_failure->code == postgres::k_commit_unknown || (pg_db_ && pg_db_->lost()))) {
      // The server went away (or is shutting down): the connection is dropped and made again,
      // with backoff, before the next batch.
      pg_reconnect_ = true;
      (void)check_storage();
    } else if (batch_failure->code == sqlite::k_storage_busy) {
      last_batch_state_ = storage_state::busy;
    } else if (batch_failure->code == sqlite::k_storage_full) {
      last_batch_state_ = storage_state::full;
    }
    spdlog::error("write batch of {} jobs failed: {}", b.jobs.size(), batch_failure->message);
  } else {
    ++transactions_committed_;
    jobs_committed_ += b.jobs.size();
    last_batch_state_ = storage_state::ok;
    metrics_.batch_jobs.observe(b.jobs.size());
  }
  // Each network thread gets its callers' answers in one hand-off (base/handoff_batch.hpp).
  std::optional<handoff_batch> handoffs(std::in_place);
  for (std::size_t i = 0; i < b.jobs.size(); ++i) {
    std::visit(
        [&](auto* j) {
          using T = std::remove_pointer_t<decltype(j)>;
          if constexpr (std::is_same_v<T, create_job>) {
            if (batch_failure) {
              j->res.status = create_status::failed;
              j->res.error = *batch_failure;
            } else if (b.ok[i]) {
              publish_create(*j);
            }
            j->done(std::move(j->res));
          } else if constexpr (std::is_same_v<T, append_job>) {
            if (batch_failure) {
              j->res.status = append_status::failed;
              j->res.error = *batch_failure;
            } else if (b.ok[i] && j->wrote) {
              publish_append(*j);
            }
            j->done(std::move(j->res));
          } else if constexpr (std::is_same_v<T, delete_job>) {
            if (batch_failure) {
              j->res.status = delete_status::failed;
              j->res.error = *batch_failure;
            } else if (b.ok[i]) {
              publish_removals(j->removals);
            }
            j->done(std::move(j->res));
          } else {
            if (!batch_failure && b.ok[i]) publish_effects(j->effects);
            j->job.done(batch_failure ? batch_failure : j->refused);
          }
          delete j;
        },
        b.jobs[i]);
  }
  handoffs.reset();
  publishing.unlock();
  // Readers last: the writers' answers are already on their way, and a stream's readers are
  // woken once per batch however many of its jobs it held.
  // A stream nobody listens to costs no round: no task, and no wake of the wake thread.
  std::vector<std::shared_ptr<stream_record>> woken;
  for (auto& record : deferred_wakes_) {
    if (record->has_listeners()) woken.push_back(std::move(record));
  }
  deferred_wakes_.clear();
  if (!woken.empty()) run_wake_rounds(std::move(woken));
}

// One wake round per record; records whose state changed again meanwhile get their next round
// in a new task, queued behind whatever else the executor has to do.
void stream_engine::run_wake_rounds(std::vector<std::shared_ptr<stream_record>> records) {
  auto wake = [this, records = std::move(records)] {
    std::vector<std::shared_ptr<stream_record>> again;
    for (const auto& record : records) {
      if (record->wake_round()) again.push_back(record);
    }
    if (!again.empty()) run_wake_rounds(std::move(again));
  };
  mutex_lock lock(wake_executor_mu_);
  if (wake_executor_) {
    wake_executor_(std::move(wake));
    return;
  }
  lock.unlock();
  wake();
}

void stream_engine::set_wake_executor(wake_executor run) {
  mutex_lock lock(wake_executor_mu_);
  wake_executor_ = std::move(run);
}

status stream_engine::advance_published(sqlite::commit_number number) {
  if (number > published_commit_ && number <= last_commit_ && syncer_->settled(number)) {
    published_commit_ = number;
    return ok_v;
  }
  std::string why = "publishing commit " + std::to_string(number.value()) +
                    " would break the writer's order (last published " +
                    std::to_string(published_commit_.value()) + ", last committed " +
                    std::to_string(last_commit_.value()) + ")";
  if (!poisoned_.exchange(true)) spdlog::critical("{}; refusing all writes until restart", why);
  return make_failure(failure_kind::internal, "publish_order_violated", why);
}

status stream_engine::commit_transaction(sqlite::commit_number& number) {
  number = syncer_->begin_commit();
  assert(number > last_commit_);  // the syncer numbers commits in the order they begin
  last_commit_ = number;
  auto started = std::chrono::steady_clock::now();
  status s = store_->commit();
  metrics_.commit_durations.observe(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()));
  syncer_->request(number);  // whatever the outcome: readers waiting for it must not hang
  if (!s) poison_if_unknown(s.error());
  return s;
}

void stream_engine::poison_if_unknown(const failure& f) {
  if (f.code != sqlite::k_storage_io_error || poisoned_.exchange(true)) return;
  spdlog::critical("commit failed with an unknown outcome ({}); refusing all writes until restart",
                   f.message);
}

status stream_engine::await_flush(sqlite::commit_number number) {
  status flushed = syncer_->wait(number);
  if (!flushed && !poisoned_.exchange(true)) {
    spdlog::critical("{}; refusing all writes until restart", flushed.error().message);
  }
  return flushed;
}

status stream_engine::commit_now() {
  sqlite::commit_number number;
  if (auto s = commit_transaction(number); !s) return s;
  return await_flush(number);
}

void stream_engine::defer_wake(std::shared_ptr<stream_record> record) {
  // Consecutive jobs on one stream wake its readers once.
  if (!deferred_wakes_.empty() && deferred_wakes_.back() == record) return;
  deferred_wakes_.push_back(std::move(record));
}

}  // namespace ordo
