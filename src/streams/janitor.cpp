// The janitor: the writer's background work between user batches. merge_log() moves the append
// log into the per-stream table once it is over --log-merge-rows or --log-merge-bytes (and all of
// it at stop); run_maintenance() writes sliding-TTL access times, expires streams and keeps the
// tail caches within --tail-cache-total-bytes; run_purge_step() deletes removed streams' data in
// bounded transactions.
//
// Thread safety: the writer thread only.
// Invariants: (1) nothing here writes while the writer is poisoned or the file is lost;
//             (2) maintenance completes the pending batch first, so its removals are published
//                 after every earlier batch's effects;
//             (3) a purge transaction deletes at most purge_batch_messages messages, forks before
//                 their sources (the foreign key);
//             (4) a failed merge or purge is rolled back and retried later; it fails no client;
//             (5) on shared storage, maintenance and purge lock their streams at the start of
//                 their transactions, as batches do (storage/stream_store.hpp).
#include "streams/stream_engine.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "streams/stream_engine_internal.hpp"

namespace ordo {

using engine_internal::remove_stream_tx;
using engine_internal::wall_ms;

void stream_engine::merge_log(bool all) {
  if (!tables_ || poisoned_ || file_lost_) return;  // detached, or writes are refused
  std::int64_t rows = tables_->log_rows();
  if (rows == 0) return;
  if (!all) {
    bool full = rows >= static_cast<std::int64_t>(options_.log_merge_rows) ||
                tables_->log_bytes() >= options_.log_merge_bytes;
    if (!full || rows < merge_retry_rows_) return;
  }
  status s = tables_->begin_immediate();
  if (s) s = inject("merge", "");
  if (s) s = tables_->merge_log();
  if (s) {
    // Nothing waits for this commit: a later flush covers it, as the flush at stop does.
    sqlite::commit_number number;
    s = all ? commit_now() : commit_transaction(number);
  }
  if (!s) {
    (void)tables_->rollback();
    merge_retry_rows_ = rows + static_cast<std::int64_t>(options_.log_merge_rows);
    spdlog::warn("moving the append log ({} messages) into the stream table failed: {}", rows,
                 s.error().message);
    return;
  }
  merge_retry_rows_ = 0;
}

// ---- maintenance: TTL flush, expiry, purge ---------------------------------------------------

void stream_engine::run_maintenance() {
  complete_pending();  // its removals are published after every earlier batch
  if (poisoned_ || file_lost_ || !store_) return;
  std::vector<std::shared_ptr<stream_record>> records;
  {
    mutex_lock lock(registry_mu_);
    records.reserve(by_id_.size());
    for (const auto& [id, r] : by_id_)
      records.push_back(r);
  }
  enforce_cache_budget(records);
  std::int64_t now = wall_ms();
  std::vector<std::pair<stream_id, std::int64_t>> accessed;  // (stream, last access ms)
  std::vector<stream_id> expired;
  // Every node writes its readers' access times; one node expires and purges (shared storage).
  const bool background = runs_background_work();
  for (const auto& r : records) {
    if (auto t = r->take_dirty_access()) accessed.emplace_back(r->config().id, *t);
    if (background && r->state().lifecycle == stream_lifecycle::live && r->expired_at(now)) {
      expired.push_back(r->config().id);
    }
  }
  if (background && storage_shared()) {
    // Streams only other nodes have served are not in this node's registry.
    if (auto more = pg_expired_streams(now)) {
      expired.insert(expired.end(), more->begin(), more->end());
      std::sort(expired.begin(), expired.end());
      expired.erase(std::unique(expired.begin(), expired.end()), expired.end());
    } else {
      spdlog::warn("looking for expired streams failed: {}", more.error().message);
    }
    purge_pending_ = true;  // streams other nodes removed are purged here
  }
  if (accessed.empty() && expired.empty()) return;

  if (auto s = store_->begin(); !s) {
    spdlog::warn("maintenance could not start a transaction: {}", s.error().message);
    return;
  }
  std::vector<removal> removals;
  std::optional<failure> error;
  // Locked first, as a batch locks its streams (storage/stream_store.hpp), where nodes share
  // the storage: an expiry may cascade to the sources of a fork.
  storage::stream_locks locks;
  for (const auto& [id, ms] : accessed)
    locks.ids.push_back(id);
  locks.removals = expired;
  if (auto s = store_->lock_streams(locks); !s) error = std::move(s).error();
  for (const auto& [id, ms] : accessed) {
    if (error) break;
    if (auto s = store_->set_last_access(id, ms); !s) error = std::move(s).error();
  }
  for (stream_id id : expired) {
    if (error) break;
    auto row = store_->find_by_id(id);
    if (!row) {
      error = std::move(row).error();
      break;
    }
    if (!*row || (*row)->state != storage::stream_row_state::live) continue;
    // Other nodes' reads renew a sliding TTL too (shared storage): they flush theirs to the row,
    // which decides.
    const storage::stream_row& r = **row;
    bool ttl_passed = r.ttl_seconds && r.last_access_ms + *r.ttl_seconds * 1000 <= now;
    bool expiry_passed = r.expires_at_ms && *r.expires_at_ms <= now;
    if (storage_shared() && !ttl_passed && !expiry_passed) continue;
    auto removed = remove_stream_tx(*store_, **row);
    if (!removed) {
      error = std::move(removed).error();
      break;
    }
    removals.insert(removals.end(), removed->begin(), removed->end());
  }
  if (!error && !removals.empty()) {
    std::vector<std::int64_t> removed;
    for (const removal& r : removals)
      removed.push_back(r.id.value());
    if (auto s = notify_streams(std::move(removed)); !s) error = std::move(s).error();
  }
  if (!error) {
    if (auto s = commit_now(); !s) error = std::move(s).error();
  }
  if (error) {
    (void)store_->rollback();
    spdlog::warn("maintenance pass failed: {}", error->message);
    return;
  }
  if (!expired.empty()) spdlog::info("expired {} streams", expired.size());
  publish_removals(removals);
}

void stream_engine::enforce_cache_budget(
    const std::vector<std::shared_ptr<stream_record>>& records) {
  std::vector<std::pair<std::int64_t, stream_record*>> cached;  // (last append, record)
  std::size_t total = 0;
  for (const auto& r : records) {
    if (std::size_t bytes = r->cache_bytes(); bytes > 0) {
      total += bytes;
      cached.emplace_back(r->cache_last_used(), r.get());
    }
  }
  tail_cache_bytes_ = total;
  if (total <= options_.tail_cache_total_bytes) return;
  std::sort(cached.begin(), cached.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::size_t dropped = 0, streams = 0;
  for (const auto& [access, record] : cached) {
    if (total <= options_.tail_cache_total_bytes) break;
    std::size_t freed = record->drop_cache();
    total -= std::min(total, freed);
    dropped += freed;
    ++streams;
  }
  tail_cache_bytes_ = total;
  spdlog::debug("tail caches over --tail-cache-total-bytes: emptied {} streams' ({} bytes)",
                streams, dropped);
}

bool stream_engine::run_purge_step() {
  if (!runs_background_work()) return false;
  complete_pending();
  if (poisoned_ || file_lost_ || !store_) return false;
  auto ids = store_->purging_streams();
  if (!ids) return false;
  if (ids->empty()) return false;
  if (auto s = store_->begin(); !s) return true;
  // Forks have higher ids than their sources and must go first (the foreign key).
  stream_id id = *std::max_element(ids->begin(), ids->end());
  storage::stream_locks locks;
  locks.ids = {id};
  status s = store_->lock_streams(locks);
  int deleted = 0;
  if (s) {
    auto n = store_->purge_messages(id, options_.purge_batch_messages);
    if (n) {
      deleted = *n;
    } else {
      s = std::move(n).error();
    }
  }
  bool done_with_stream = s && deleted < options_.purge_batch_messages;
  if (s && done_with_stream) s = store_->delete_stream(id);
  if (s) s = commit_now();
  if (!s) {
    (void)store_->rollback();
    spdlog::warn("purging stream {} failed: {}", id.value(), s.error().message);
    return true;
  }
  return !(done_with_stream && ids->size() == 1);
}

}  // namespace ordo
