#include "streams/stream_record.hpp"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <utility>

#include "streams/sse_encoding.hpp"

namespace ordo {

// ---- encodings -------------------------------------------------------------------------------

std::string encode_body(payload_mode mode, const std::vector<message_ptr>& messages) {
  std::size_t size = 2;
  for (const auto& m : messages)
    size += m->size() + 1;
  std::string out;
  out.reserve(size);
  if (mode == payload_mode::json) out.push_back('[');
  bool first = true;
  for (const auto& m : messages) {
    if (mode == payload_mode::json && !first) out.push_back(',');
    out.append(*m);
    first = false;
  }
  if (mode == payload_mode::json) out.push_back(']');
  return out;
}

void append_sse_data_event(std::string& out, sse_mode mode,
                           const std::vector<message_ptr>& messages) {
  switch (mode) {
    case sse_mode::json: {
      std::string joined = encode_body(payload_mode::json, messages);
      // encode_body wrapped the values in [ ]; the SSE helper adds its own brackets.
      append_sse_json_data_event(out, std::string_view(joined).substr(1, joined.size() - 2));
      break;
    }
    case sse_mode::text:
      append_sse_text_data_event(out, encode_body(payload_mode::bytes, messages));
      break;
    case sse_mode::base64:
      append_sse_base64_data_event(out, encode_body(payload_mode::bytes, messages));
      break;
  }
}

published_batch::published_batch(stream_position after, std::vector<message_ptr> messages,
                                 bool closes)
    : after_(after), messages_(std::move(messages)), closes_(closes) {}

const std::string& published_batch::body(payload_mode mode) const {
  std::call_once(body_once_, [&] { body_ = encode_body(mode, messages_); });
  return body_;
}

const std::string& published_batch::sse_data_event(sse_mode mode) const {
  std::call_once(sse_once_, [&] { append_sse_data_event(sse_, mode, messages_); });
  return sse_;
}

// ---- stream_record ---------------------------------------------------------------------------

stream_record::stream_record(stream_config config, published_state initial,
                             std::int64_t last_access_ms, std::size_t cache_limit_bytes)
    : config_(std::move(config)),
      state_(initial),
      last_access_ms_(last_access_ms),
      cache_limit_bytes_(cache_limit_bytes) {}

published_state stream_record::state() const {
  mutex_lock lock(mu_);
  return state_;
}

bool stream_record::expired_at(std::int64_t now_ms) const {
  if (config_.expires_at_ms && now_ms >= *config_.expires_at_ms) return true;
  if (config_.ttl_seconds) {
    return now_ms - last_access_ms_.load(std::memory_order_relaxed) >= *config_.ttl_seconds * 1000;
  }
  return false;
}

void stream_record::touch(std::int64_t now_ms) {
  if (!config_.ttl_seconds) return;  // only sliding windows need the access time
  std::int64_t prev = last_access_ms_.load(std::memory_order_relaxed);
  while (prev < now_ms &&
         !last_access_ms_.compare_exchange_weak(prev, now_ms, std::memory_order_relaxed)) {
  }
  access_dirty_.store(true, std::memory_order_relaxed);
}

std::optional<std::int64_t> stream_record::take_dirty_access() {
  if (!access_dirty_.exchange(false, std::memory_order_relaxed)) return std::nullopt;
  return last_access_ms_.load(std::memory_order_relaxed);
}

std::optional<read_chunk> stream_record::read_cached(stream_position after, stream_position upto,
                                                     std::size_t max_bytes) const {
  mutex_lock lock(cache_mu_);
  if (cache_.empty() || after < cache_.front()->after() || after >= cache_.back()->upto()) {
    return std::nullopt;
  }
  read_chunk chunk;
  chunk.after = after;
  std::size_t bytes = 0;
  // Batches are contiguous and ordered: skip those before `after` by bisection, since live
  // readers read near the end of a cache that may hold thousands of single-message batches.
  auto first = std::partition_point(cache_.begin(), cache_.end(),
                                    [after](const auto& batch) { return batch->upto() <= after; });
  for (auto it = first; it != cache_.end(); ++it) {
    const auto& batch = *it;
    if (batch->after() >= upto) break;
    if (batch->after() == after && batch->upto() <= upto && chunk.messages.empty()) {
      chunk.shared = batch;
    }
    for (std::size_t i = 0; i < batch->messages().size(); ++i) {
      stream_position position = batch->after() + i + 1;
      if (position <= after) continue;
      if (position > upto || (bytes >= max_bytes && !chunk.messages.empty())) {
        if (chunk.shared && chunk.upto() != chunk.shared->upto()) chunk.shared.reset();
        return chunk;
      }
      bytes += batch->messages()[i]->size();
      chunk.messages.push_back(batch->messages()[i]);
    }
  }
  if (chunk.shared && chunk.upto() != chunk.shared->upto()) chunk.shared.reset();
  return chunk;
}

void stream_record::publish_append(stream_position after, std::vector<message_ptr> messages,
                                   bool closed) {
  stream_position upto = after + messages.size();
  if (stream_position tail = state().tail; after < tail) {
    // publish_foreign() got here first (shared storage): the messages are in the database.
    messages.clear();
    if (upto > tail) drop_cache();
    upto = std::max(upto, tail);
  }
  if (!messages.empty()) {
    auto batch = std::make_shared<const published_batch>(after, std::move(messages), closed);
    std::size_t batch_bytes = 0;
    for (const auto& m : batch->messages())
      batch_bytes += m->size();
    mutex_lock lock(cache_mu_);
    // A gap (the cache fell behind) cannot be served from memory: start over.
    if (!cache_.empty() && cache_.back()->upto() != after) {
      cache_.clear();
      cache_bytes_ = 0;
    }
    cache_.push_back(std::move(batch));
    cache_bytes_ += batch_bytes;
    cache_used_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                      std::memory_order_relaxed);
    while (cache_.size() > 1 && cache_bytes_ > cache_limit_bytes_) {
      for (const auto& m : cache_.front()->messages())
        cache_bytes_ -= m->size();
      cache_.pop_front();
    }
  }
  {
    mutex_lock lock(mu_);
    assert(upto >= state_.tail);
    state_.tail = upto;
    state_.closed = state_.closed || closed;
  }
}

bool stream_record::publish_foreign(stream_position tail, bool closed,
                                    stream_position pruned_upto) {
  published_state before = state();
  bool advances = tail > before.tail;
  bool closes = closed && !before.closed;
  bool prunes = pruned_upto > before.pruned_upto;
  if (!advances && !closes && !prunes) return false;
  // A gap the cache cannot fill: readers of the new positions read the database.
  if (advances) drop_cache();
  mutex_lock lock(mu_);
  state_.tail = std::max(state_.tail, tail);
  state_.closed = state_.closed || closed;
  state_.pruned_upto = std::max(state_.pruned_upto, pruned_upto);
  return true;
}

bool stream_record::caches(stream_position after) const {
  mutex_lock lock(cache_mu_);
  return !cache_.empty() && after >= cache_.front()->after() && after < cache_.back()->upto();
}

std::size_t stream_record::cache_bytes() const {
  mutex_lock lock(cache_mu_);
  return cache_bytes_;
}

std::size_t stream_record::drop_cache() {
  mutex_lock lock(cache_mu_);
  cache_.clear();
  return std::exchange(cache_bytes_, 0);
}

void stream_record::publish_pruned(stream_position upto) {
  mutex_lock lock(mu_);
  state_.pruned_upto = std::max(state_.pruned_upto, upto);
}

void stream_record::publish_lifecycle(stream_lifecycle lifecycle) {
  {
    mutex_lock lock(mu_);
    state_.lifecycle = lifecycle;
  }
  if (lifecycle == stream_lifecycle::removed || lifecycle == stream_lifecycle::replaced) {
    drop_cache();
  }
  wake_waiters();
}

std::uint64_t stream_record::add_waiter(std::function<void()> wake) {
  mutex_lock lock(waiters_mu_);
  std::uint64_t id = next_waiter_id_++;
  waiters_.emplace(id, std::move(wake));
  return id;
}

void stream_record::remove_waiter(std::uint64_t id) {
  mutex_lock lock(waiters_mu_);
  waiters_.erase(id);
}

std::size_t stream_record::waiter_count() const {
  mutex_lock lock(waiters_mu_);
  return waiters_.size();
}

bool stream_record::has_listeners() const {
  mutex_lock lock(waiters_mu_);
  return waking_ || !waiters_.empty() || !subscribers_.empty();
}

void stream_record::wake_waiters() {
  while (wake_round()) {
  }
}

bool stream_record::wake_round() {
  std::unordered_map<std::uint64_t, std::function<void()>> woken;
  std::vector<std::weak_ptr<live_subscriber>> subscribers;
  {
    mutex_lock lock(waiters_mu_);
    if (waking_) {
      wake_again_ = true;
      return false;
    }
    waking_ = true;
    woken.swap(waiters_);
    subscribers.reserve(subscribers_.size());
    for (const auto& [id, reader] : subscribers_)
      subscribers.push_back(reader);
  }
  // Called outside the lock. A wake-up posts work to the waiter's own executor; a subscriber
  // may also write to its socket (a parked SSE reader, on the engine's wake task).
  for (auto& [id, wake] : woken)
    wake();
  for (const auto& weak : subscribers) {
    if (auto reader = weak.lock()) reader->on_change();
  }
  mutex_lock lock(waiters_mu_);
  waking_ = false;
  return std::exchange(wake_again_, false);
}

std::uint64_t stream_record::subscribe(std::weak_ptr<live_subscriber> reader) {
  mutex_lock lock(waiters_mu_);
  std::uint64_t id = next_waiter_id_++;
  subscribers_.emplace_back(id, std::move(reader));
  return id;
}

void stream_record::unsubscribe(std::uint64_t id) {
  mutex_lock lock(waiters_mu_);
  auto it =
      std::lower_bound(subscribers_.begin(), subscribers_.end(), id,
                       [](const auto& entry, std::uint64_t key) { return entry.first < key; });
  if (it != subscribers_.end() && it->first == id) subscribers_.erase(it);
}

}  // namespace ordo
