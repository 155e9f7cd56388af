#include "client/producer.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <thread>

namespace ordo::client {

namespace {

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

std::optional<std::uint64_t> parse_u64(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || p != text->data() + text->size()) return std::nullopt;
  return v;
}

}  // namespace

// ---- message_ticket --------------------------------------------------------------------------

message_state message_ticket::state() const {
  mutex_lock lock(mu_);
  return state_;
}

std::string message_ticket::offset() const {
  mutex_lock lock(mu_);
  return offset_;
}

failure message_ticket::error() const {
  mutex_lock lock(mu_);
  return error_;
}

bool message_ticket::wait(std::chrono::milliseconds timeout) const {
  mutex_lock lock(mu_);
  return lock.wait_for(cv_, timeout,
                       [&]() REQUIRES(mu_) { return state_ != message_state::pending; });
}

void message_ticket::settle(message_state state, std::string offset, failure error) {
  {
    mutex_lock lock(mu_);
    state_ = state;
    offset_ = std::move(offset);
    error_ = std::move(error);
  }
  cv_.notify_all();
}

// ---- producer --------------------------------------------------------------------------------

producer::producer(client_options client, producer_options options)
    : client_options_(std::move(client)), options_(std::move(options)) {}

result<std::unique_ptr<producer>> producer::start(client_options client, producer_options options) {
  if (options.producer_id.empty()) {
    return make_failure(failure_kind::invalid, "invalid_producer_id",
                        "a producer needs a producer id");
  }
  if (options.max_batch_bytes == 0 || options.max_batch_messages == 0 ||
      options.max_pending_messages == 0 || options.max_pending_bytes == 0) {
    return make_failure(failure_kind::invalid, "invalid_limit",
                        "producer batch and queue limits must be above zero");
  }
  std::unique_ptr<producer> p(new producer(std::move(client), std::move(options)));
  auto c = stream_client::connect(p->client_options_);
  if (!c) return std::move(c).error();
  p->client_ = std::move(*c);
  if (p->options_.content_type.empty()) {
    // Asked like every batch is sent: a dropped connection here is retried, not fatal.
    auto started = std::chrono::steady_clock::now();
    for (int attempt = 0;; ++attempt) {
      auto info = p->client_->head(p->options_.path);
      if (info) {
        p->options_.content_type = info->content_type;
        break;
      }
      const retry_policy& policy = p->options_.retry;
      if (!is_retryable(info.error()) ||
          policy.exhausted(attempt + 1, std::chrono::steady_clock::now() - started)) {
        return std::move(info).error();
      }
      std::this_thread::sleep_for(policy.wait_before(attempt, info.error(), p->rng_));
    }
  }
  p->json_ = is_json_content_type(p->options_.content_type);
  {
    mutex_lock lock(p->mu_);  // no other thread yet; the analysis asks for it all the same
    p->stats_.epoch = p->options_.epoch.value_or(wall_ms());
  }
  p->sender_ = std::thread([raw = p.get()] { raw->run(); });
  return p;
}

producer::~producer() {
  (void)close(std::chrono::milliseconds(1000));
}

result<ticket> producer::append(std::string message) {
  if (json_) {
    boost::system::error_code ec;
    auto value = boost::json::parse(message, ec);
    if (ec) {
      return make_failure(failure_kind::invalid, "invalid_json",
                          "the message is not one JSON value: " + ec.message());
    }
    message = boost::json::serialize(value);
  }
  if (message.size() > options_.max_pending_bytes || message.size() > options_.max_batch_bytes) {
    return make_failure(failure_kind::too_large, "message_too_large",
                        "a message of " + std::to_string(message.size()) +
                            " bytes is over the producer's byte limits");
  }
  auto t = std::make_shared<message_ticket>();
  mutex_lock lock(mu_);
  auto refused = [&]() REQUIRES(mu_) -> std::optional<failure> {
    if (fenced_) return *fenced_;
    if (closing_ || stopped_) {
      return make_failure(failure_kind::unavailable, "producer_closed", "the producer is closed");
    }
    return std::nullopt;
  };
  if (auto f = refused()) return *f;
  auto has_room = [&]() REQUIRES(mu_) {
    return pending_messages_ < options_.max_pending_messages &&
           pending_bytes_ + message.size() <= options_.max_pending_bytes;
  };
  if (!has_room()) {
    if (options_.on_full == when_full::fail) {
      return make_failure(failure_kind::unavailable, "queue_full",
                          "the producer has " + std::to_string(pending_messages_) + " messages (" +
                              std::to_string(pending_bytes_) +
                              " bytes) waiting to be acknowledged");
    }
    bool room = lock.wait_for(space_cv_, options_.full_timeout,
                              [&]() REQUIRES(mu_) { return has_room() || refused().has_value(); });
    if (auto f = refused()) return *f;
    if (!room) {
      return make_failure(failure_kind::unavailable, "queue_full_timeout",
                          "the producer's queue stayed full for " +
                              std::to_string(options_.full_timeout.count()) + " ms");
    }
  }
  pending_messages_ += 1;
  pending_bytes_ += message.size();
  appended_ += 1;
  queue_.push_back({std::move(message), t});
  lock.unlock();
  work_cv_.notify_one();
  return t;
}

bool producer::flush(std::chrono::milliseconds timeout) {
  mutex_lock lock(mu_);
  std::uint64_t target = appended_;
  return lock.wait_for(space_cv_, timeout, [&]() REQUIRES(mu_) { return settled_ >= target; });
}

status producer::close(std::chrono::milliseconds timeout) {
  {
    mutex_lock lock(mu_);
    if (!sender_.joinable()) return ok_v;
    closing_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  (void)flush(timeout);
  {
    mutex_lock lock(mu_);
    stopped_ = true;
  }
  work_cv_.notify_all();
  client_->cancel();  // a request in flight ends now
  sender_.join();
  mutex_lock lock(mu_);
  fail_all_locked(make_failure(failure_kind::unavailable, "producer_closed",
                               "the producer was closed before this message was acknowledged"));
  if (stats_.failed > 0) {
    return make_failure(failure_kind::unavailable, "messages_failed",
                        std::to_string(stats_.failed) + " messages were not acknowledged");
  }
  return ok_v;
}

producer_stats producer::stats() const {
  mutex_lock lock(mu_);
  producer_stats s = stats_;
  s.pending_messages = pending_messages_;
  s.pending_bytes = pending_bytes_;
  return s;
}

void producer::fail_all_locked(const failure& error) {
  while (!queue_.empty()) {
    entry e = std::move(queue_.front());
    queue_.pop_front();
    pending_messages_ -= 1;
    pending_bytes_ -= e.data.size();
    settled_ += 1;
    stats_.failed += 1;
    e.t->settle(message_state::failed, "", error);
  }
  space_cv_.notify_all();
}

void producer::settle(std::deque<entry>& batch, message_state state, const std::string& offset,
                      const failure& error) {
  for (entry& e : batch)
    e.t->settle(state, state == message_state::acknowledged ? offset : "", error);
  {
    mutex_lock lock(mu_);
    for (const entry& e : batch) {
      pending_messages_ -= 1;
      pending_bytes_ -= e.data.size();
    }
    settled_ += batch.size();
    if (state == message_state::acknowledged) {
      stats_.acknowledged += batch.size();
    } else {
      stats_.failed += batch.size();
    }
  }
  space_cv_.notify_all();
}

void producer::run() {
  for (;;) {
    std::deque<entry> batch;
    {
      mutex_lock lock(mu_);
      lock.wait(work_cv_, [&]() REQUIRES(mu_) { return stopped_ || closing_ || !queue_.empty(); });
      if (stopped_ || queue_.empty()) {
        if (stopped_ || closing_) return;
        continue;
      }
      // Linger for more unless the batch is full already or the producer is closing.
      auto queued_bytes = [&]() REQUIRES(mu_) {
        std::size_t n = 0;
        for (const entry& e : queue_)
          n += e.data.size();
        return n;
      };
      auto full = [&]() REQUIRES(mu_) {
        return queue_.size() >= options_.max_batch_messages ||
               queued_bytes() >= options_.max_batch_bytes;
      };
      if (!full() && options_.linger.count() > 0) {
        lock.wait_for(work_cv_, options_.linger,
                      [&]() REQUIRES(mu_) { return stopped_ || closing_ || full(); });
      }
      if (stopped_) return;
      std::size_t bytes = 0;
      while (!queue_.empty() && batch.size() < options_.max_batch_messages &&
             (batch.empty() || bytes + queue_.front().data.size() <= options_.max_batch_bytes)) {
        bytes += queue_.front().data.size();
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    send_batch(batch);
  }
}

void producer::send_batch(std::deque<entry>& batch) {
  std::string body;
  if (json_) body.push_back('[');
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (json_ && i > 0) body.push_back(',');
    body += batch[i].data;
  }
  if (json_) body.push_back(']');

  bool auto_claim = !options_.epoch.has_value();
  auto started = std::chrono::steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    std::uint64_t epoch = 0, seq = 0;
    {
      mutex_lock lock(mu_);
      epoch = stats_.epoch;
      seq = stats_.next_seq;
      if (attempt == 0) stats_.batches += 1;
    }
    http_request r;
    r.method = "POST";
    r.target = stream_client::stream_target(options_.path);
    r.headers = {{"Content-Type", options_.content_type},
                 {"Producer-Id", options_.producer_id},
                 {"Producer-Epoch", std::to_string(epoch)},
                 {"Producer-Seq", std::to_string(seq)}};
    r.body = body;
    auto res = client_->send(std::move(r));
    if (res && (res->status == 200 || res->status == 204)) {
      {
        mutex_lock lock(mu_);
        stats_.next_seq = seq + 1;
        if (res->status == 204) stats_.duplicates += 1;
      }
      settle(batch, message_state::acknowledged, res->header("Stream-Next-Offset").value_or(""),
             {});
      return;
    }
    failure f = res ? failure_from_response(*res) : res.error();
    if (res && res->status == 403) {
      std::uint64_t current = parse_u64(res->header("Producer-Epoch")).value_or(epoch);
      if (auto_claim) {
        // Another incarnation holds a higher epoch: claim the next one.
        mutex_lock lock(mu_);
        stats_.epoch = std::max(current, epoch) + 1;
        stats_.next_seq = 0;
        continue;
      }
      failure fenced =
          make_failure(failure_kind::forbidden, "producer_fenced",
                       "epoch " + std::to_string(epoch) + " of producer '" + options_.producer_id +
                           "' was fenced by epoch " + std::to_string(current));
      {
        // Fenced before the batch's tickets say so: an append that follows sees it.
        mutex_lock lock(mu_);
        fenced_ = fenced;
      }
      settle(batch, message_state::failed, "", fenced);
      mutex_lock lock(mu_);
      fail_all_locked(fenced);
      return;
    }
    if (res && res->status == 409 && f.code == "producer_seq_gap") {
      // The server no longer has what it acknowledged (e.g. its database was restored from a
      // backup): start a new epoch so the batch is accepted as new.
      mutex_lock lock(mu_);
      stats_.epoch = std::max(wall_ms(), epoch + 1);
      stats_.next_seq = 0;
      continue;
    }
    const retry_policy& policy = options_.retry;
    bool gave_up = policy.exhausted(attempt + 1, std::chrono::steady_clock::now() - started);
    bool stopped = false;
    {
      mutex_lock lock(mu_);
      stopped = stopped_;
    }
    if (stopped) {
      f = make_failure(failure_kind::unavailable, "producer_closed",
                       "the producer was closed while this message was being sent (it may "
                       "have been stored): " +
                           f.message);
    } else if (!is_retryable(f)) {
      settle(batch, message_state::failed, "", f);  // refused: its sequence was not used
      return;
    }
    if (gave_up || stopped) {
      {
        // It may have been stored: the next batch must not reuse its sequence (a gap then
        // makes the producer claim a new epoch).
        mutex_lock lock(mu_);
        stats_.next_seq = seq + 1;
      }
      settle(batch, message_state::failed, "", f);
      return;
    }
    auto wait = policy.wait_before(attempt, f, rng_);
    mutex_lock lock(mu_);
    stats_.retries += 1;
    lock.wait_for(work_cv_, wait, [&]() REQUIRES(mu_) { return stopped_; });
  }
}

}  // namespace ordo::client
