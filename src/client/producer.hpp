// An idempotent producer: exactly-once appends to one stream across retries and reconnects.
//
// append() queues a message and returns at once with a ticket whose state the caller can watch
// (pending, acknowledged, failed). One sender thread batches queued messages (waiting up to
// `linger` for more) and sends each batch as one POST with Producer-Id, Producer-Epoch and a
// Producer-Seq per batch, so a batch sent twice is stored once. Connection errors, timeouts,
// 5xx and 503 (honouring Retry-After) are retried with capped exponential backoff and jitter,
// the same batch with the same sequence, until acknowledged.
//
// The epoch: unless one is given, the producer claims a fresh one at start (the wall clock in
// milliseconds, so a restarted producer is above its earlier incarnations) and, if the server
// knows a higher one (403), claims the next. A given epoch is kept; a 403 then fences the
// producer (every pending message fails with stale_producer_epoch).
//
// Bounded: at most max_pending_messages and max_pending_bytes wait to be acknowledged. When
// full, append() waits up to full_timeout or fails at once, as the caller chose; nothing is
// ever dropped silently.
//
// Thread safety: every public function may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "base/result.hpp"
#include "base/thread_annotations.hpp"
#include "client/client.hpp"

namespace ordo::client {

enum class message_state { pending, acknowledged, failed };

// What became of one appended message.
class message_ticket {
 public:
  message_state state() const;
  // Once acknowledged: the stream's offset after the batch that carried it.
  std::string offset() const;
  // Once failed: why.
  failure error() const;
  // Waits until it is no longer pending; false on timeout.
  bool wait(std::chrono::milliseconds timeout) const;

 private:
  friend class producer;
  void settle(message_state state, std::string offset, failure error);

  mutable mutex mu_;
  mutable std::condition_variable cv_;
  message_state state_ = message_state::pending;
  std::string offset_;
  failure error_;
};
using ticket = std::shared_ptr<message_ticket>;

enum class when_full { wait, fail };

struct producer_options {
  std::string path;
  std::string producer_id;
  std::optional<std::uint64_t> epoch;  // default: claim a fresh one (see above)
  std::string content_type;            // default: the stream's (a HEAD at start)
  std::chrono::milliseconds linger{5};
  std::size_t max_batch_bytes = 1 << 20;
  std::size_t max_batch_messages = 10'000;
  std::size_t max_pending_messages = 100'000;
  std::size_t max_pending_bytes = 64 << 20;
  when_full on_full = when_full::wait;
  std::chrono::milliseconds full_timeout{30'000};
  // Retries go on until acknowledged unless the policy gives up (then the batch fails with the
  // last error; its outcome may be unknown).
  retry_policy retry{std::chrono::milliseconds(50), std::chrono::milliseconds(5'000), 0,
                     std::chrono::milliseconds(0)};
};

struct producer_stats {
  std::uint64_t epoch = 0;
  std::uint64_t next_seq = 0;
  std::size_t pending_messages = 0;
  std::size_t pending_bytes = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t failed = 0;
  std::uint64_t batches = 0;
  std::uint64_t retries = 0;
  std::uint64_t duplicates = 0;  // batches the server had already stored (a retry's first try)
};

class producer {
 public:
  static result<std::unique_ptr<producer>> start(client_options client, producer_options options);
  // close() with a short timeout.
  ~producer();

  // Queues one message (for a JSON stream: one JSON value, checked here). Fails with
  // queue_full (when_full::fail), queue_full_timeout (when_full::wait, after full_timeout),
  // message_too_large (over max_pending_bytes or max_batch_bytes), invalid_json, or
  // producer_closed / producer_fenced.
  result<ticket> append(std::string message);
  // Waits until everything appended before the call is acknowledged or failed; false on
  // timeout.
  bool flush(std::chrono::milliseconds timeout);
  // Stops taking messages, waits up to `timeout` for the queue to be sent, then stops; what is
  // still pending then fails with producer_closed. ok if nothing failed.
  status close(std::chrono::milliseconds timeout);

  producer_stats stats() const;

 private:
  struct entry {
    std::string data;
    ticket t;
  };

  producer(client_options client, producer_options options);
  void run();
  // Sends one batch until it is acknowledged, it fails for good, or the producer stops.
  void send_batch(std::deque<entry>& batch);
  void settle(std::deque<entry>& batch, message_state state, const std::string& offset,
              const failure& error);
  void fail_all_locked(const failure& error) REQUIRES(mu_);

  client_options client_options_;
  producer_options options_;
  std::unique_ptr<stream_client> client_;
  bool json_ = false;

  mutable mutex mu_;
  std::condition_variable work_cv_;          // the sender: messages queued, or stopping
  std::condition_variable space_cv_;         // appenders: room in the queue; flushers: progress
  std::deque<entry> queue_ GUARDED_BY(mu_);  // not yet in a batch
  std::size_t pending_messages_ GUARDED_BY(mu_) = 0;  // queued or in flight
  std::size_t pending_bytes_ GUARDED_BY(mu_) = 0;
  std::uint64_t appended_ GUARDED_BY(mu_) = 0;  // messages ever accepted
  std::uint64_t settled_ GUARDED_BY(mu_) = 0;   // messages acknowledged or failed
  bool closing_ GUARDED_BY(mu_) = false;
  bool stopped_ GUARDED_BY(mu_) = false;  // the sender must stop now
  std::optional<failure> fenced_ GUARDED_BY(mu_);
  producer_stats stats_ GUARDED_BY(mu_);  // (epoch and next_seq: sender thread)

  std::mt19937_64 rng_{std::random_device{}()};
  std::thread sender_;
};

}  // namespace ordo::client
