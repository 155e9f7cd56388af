// The in-memory view of one stream that readers use: its immutable configuration, the state
// published after each commit, the tail cache, and the readers waiting for new messages.
//
// Thread safety: config is immutable. publish_*() and mark_*() run on the writer thread only,
// after the transaction that made the change has committed. Everything else may be called from
// any thread: published state is guarded by mu_, the cache by cache_mu_, waiters and
// subscribers by waiters_mu_.
// Invariants: (1) the tail only grows and nothing enters the cache before its commit returned;
//             (2) positions in the cache are dense and increasing and end at the tail;
//             (3) waiters and subscribers are told after the state they wait for is published,
//                 so a reader that registers (or parks) and then re-checks the state cannot
//                 miss a change.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/stream_position.hpp"
#include "base/thread_annotations.hpp"

namespace ordo {

// Positions (after, upto] of a stream are served from `stream`'s own messages.
struct read_segment {
  stream_id stream;
  stream_position after;
  stream_position upto;
};

enum class payload_mode { bytes, json };
enum class sse_mode { text, json, base64 };

struct stream_config {
  stream_id id;
  std::string path;
  std::string content_type;  // as the creator sent it
  std::string media_type;    // normalized type/subtype, for comparisons
  payload_mode payload = payload_mode::bytes;
  sse_mode sse = sse_mode::base64;
  std::uint64_t incarnation = 0;
  std::uint64_t offset_prefix = 0;
  std::uint64_t generation = 0;  // the database file it was loaded from (stream_engine::generation)
  std::int64_t created_at_ms = 0;
  std::optional<std::int64_t> ttl_seconds;
  std::optional<std::int64_t> expires_at_ms;
  std::optional<stream_id> fork_source_id;
  stream_position base_seq;  // own messages have positions > base_seq
  std::uint64_t fork_sub_offset = 0;
  std::vector<read_segment> inherited;  // read plan for positions <= base_seq, ascending
};

// replaced: the database file this record was loaded from was replaced under the server and the
// engine switched to the new one; readers of it end, and clients resume against the new file.
enum class stream_lifecycle { live, soft_deleted, removed, replaced };

struct published_state {
  stream_position tail;  // the position of the last message: start() when there is none
  bool closed = false;
  stream_lifecycle lifecycle = stream_lifecycle::live;
  stream_position pruned_upto;  // positions up to here were removed by retention
};

using message_ptr = std::shared_ptr<const std::string>;

// One commit's messages for one stream. Its encodings are built once, by the first reader that
// needs them, and shared by every reader woken at `after` (live long-poll and SSE fan-out).
class published_batch {
 public:
  published_batch(stream_position after, std::vector<message_ptr> messages, bool closes);

  stream_position after() const { return after_; }
  stream_position upto() const { return after_ + messages_.size(); }
  bool closes_stream() const { return closes_; }
  const std::vector<message_ptr>& messages() const { return messages_; }

  // The catch-up / long-poll response body for these messages.
  const std::string& body(payload_mode mode) const;
  // The SSE `data` event for these messages.
  const std::string& sse_data_event(sse_mode mode) const;

 private:
  stream_position after_;
  std::vector<message_ptr> messages_;
  bool closes_;
  mutable std::once_flag body_once_, sse_once_;
  mutable std::string body_, sse_;
};

// A contiguous run of messages handed to a reader.
struct read_chunk {
  stream_position after;
  std::vector<message_ptr> messages;
  std::shared_ptr<const published_batch> shared;  // set when the chunk is exactly one batch
  stream_position upto() const { return after + messages.size(); }
};

std::string encode_body(payload_mode mode, const std::vector<message_ptr>& messages);
void append_sse_data_event(std::string& out, sse_mode mode,
                           const std::vector<message_ptr>& messages);

// A reader that stays subscribed across changes (a parked SSE reader): told of every change,
// in the order readers subscribed, by the thread that runs the wake round.
class live_subscriber {
 public:
  virtual ~live_subscriber() = default;
  // Must not block; may read the record, but not subscribe or unsubscribe.
  virtual void on_change() = 0;
};

class stream_record {
 public:
  stream_record(stream_config config, published_state initial, std::int64_t last_access_ms,
                std::size_t cache_limit_bytes);

  const stream_config& config() const { return config_; }
  published_state state() const;

  bool expired_at(std::int64_t now_ms) const;
  // A read or write resets the sliding TTL (HEAD does not).
  void touch(std::int64_t now_ms);
  std::int64_t last_access_ms() const { return last_access_ms_.load(std::memory_order_relaxed); }
  // Returns the access time to persist if it changed since the last call, clearing the flag.
  std::optional<std::int64_t> take_dirty_access();

  // Messages with positions in (after, upto] if the cache still holds position after + 1,
  // at most max_bytes (at least one message). nullopt when the cache cannot serve it.
  std::optional<read_chunk> read_cached(stream_position after, stream_position upto,
                                        std::size_t max_bytes) const;

  // Whether read_cached() would serve a read from `after` now (without building the chunk).
  bool caches(stream_position after) const;

  // The payload bytes the tail cache holds.
  std::size_t cache_bytes() const;
  // When the tail cache last took a commit (steady clock ticks): the global budget empties the
  // caches of the streams appended to least recently first. (Not reads: a parked-reader round
  // reads the cache once per reader, and the ones that matter are those still appended to.)
  std::int64_t cache_last_used() const { return cache_used_.load(std::memory_order_relaxed); }
  // Empties the tail cache (the global budget, stream_engine_options::tail_cache_total_bytes):
  // reads it served go to the database until the next commit fills it again. Returns the bytes
  // freed.
  std::size_t drop_cache();

  // Writer thread, after commit. Wakes no one: the caller wakes the readers (wake_waiters() or
  // wake_round()) once it has answered the writers, so their answers do not queue behind the
  // wake-ups of thousands of live readers.
  // Where the storage is shared (PostgreSQL), a refresh on a reader thread also publishes
  // (another node's messages, read once for the readers waiting here), serialized with the
  // writer by the engine's publish lock; and a record may have been moved past `after` by
  // publish_foreign() meanwhile: what it already covers is not cached again.
  void publish_append(stream_position after, std::vector<message_ptr> messages, bool closed);
  // Another node's writes, found in the database (shared storage only, serialized with the
  // writer's publication by the engine): moves the tail forward to `tail` without the messages
  // (the cache is emptied, and readers read them from the database), marks the stream closed
  // and records a prune. Returns whether anything changed; wakes no one.
  bool publish_foreign(stream_position tail, bool closed, stream_position pruned_upto);
  void wake_waiters();
  // One round of wake_waiters(): calls the waiters registered now and every subscriber, unless a
  // round is running on another thread, which is then asked to be followed by another. True when
  // the caller must run another round (now or soon): the state changed again while this one ran.
  // The engine's wake task posts that round behind other work instead of looping, so a stream
  // whose readers take a whole round to write to gets one round at a time, each reader once per
  // round.
  bool wake_round();
  void publish_lifecycle(stream_lifecycle lifecycle);
  void publish_pruned(stream_position upto);

  // Registers a one-shot wake-up, called when the state changes: from the writer thread, or
  // from the task the engine's wake executor runs. The callback must be cheap and must not call
  // back into this record.
  std::uint64_t add_waiter(std::function<void()> wake);
  void remove_waiter(std::uint64_t id);
  std::size_t waiter_count() const;
  // Whether a wake round would do anything: a one-shot waiter, a subscriber, or a round in
  // progress (which must be asked to run again). A reader registers before it re-checks the
  // state and the writer asks this after it published: either the reader sees the change or
  // this sees the reader, so a round skipped on false misses no one.
  bool has_listeners() const;

  // Subscribes `reader` to every change until unsubscribe(id): no registration per change, and
  // a fixed place in each round, so every reader waits about one round.
  // Held weakly: a reader that ends without unsubscribing is skipped.
  std::uint64_t subscribe(std::weak_ptr<live_subscriber> reader);
  void unsubscribe(std::uint64_t id);

 private:
  const stream_config config_;

  mutable mutex mu_;
  published_state state_ GUARDED_BY(mu_);

  std::atomic<std::int64_t> last_access_ms_;
  std::atomic<bool> access_dirty_{false};

  const std::size_t cache_limit_bytes_;
  mutable mutex cache_mu_;
  std::deque<std::shared_ptr<const published_batch>> cache_ GUARDED_BY(cache_mu_);
  std::size_t cache_bytes_ GUARDED_BY(cache_mu_) = 0;
  std::atomic<std::int64_t> cache_used_{0};  // see cache_last_used()

  mutable mutex waiters_mu_;
  std::uint64_t next_waiter_id_ GUARDED_BY(waiters_mu_) = 1;
  bool waking_ GUARDED_BY(waiters_mu_) = false;      // a round runs
  bool wake_again_ GUARDED_BY(waiters_mu_) = false;  // and another must follow it
  std::unordered_map<std::uint64_t, std::function<void()>> waiters_ GUARDED_BY(waiters_mu_);
  // Ordered by id, which is the order of subscription.
  std::vector<std::pair<std::uint64_t, std::weak_ptr<live_subscriber>>> subscribers_
      GUARDED_BY(waiters_mu_);
};

}  // namespace ordo
