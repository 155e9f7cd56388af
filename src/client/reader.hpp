// A reader that never loses or repeats a message: it catches up from an offset with plain reads,
// then follows live over SSE (falling back to long-poll where SSE does not work), and after any
// disconnect resumes from the last offset it delivered.
//
// Messages are delivered only together with the offset that follows them (an SSE data event is
// held until its control event), so a resume never repeats what was delivered. A 410 (the
// offset belongs to another or a replaced database, or retention removed it) is delivered as a
// resync event; the reader then starts again from the beginning, and the caller drops what it
// built from earlier messages.
//
// Thread safety: run() on one thread; cancel() from any.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/thread_annotations.hpp"
#include "client/client.hpp"

namespace ordo::client {

enum class live_mode {
  none,       // stop at the tail
  long_poll,  // follow with long-polls
  sse,        // follow over SSE
  automatic,  // SSE, falling back to long-poll when SSE does not work
};

struct reader_options {
  std::string path;
  // The URL path to read instead of /v1/stream/{path}, for other resources that speak the
  // Durable Streams read protocol (e.g. /v1/changes, /v1/sessions/{id}/events).
  std::string target;
  std::string offset = "-1";
  live_mode live = live_mode::automatic;
  // Reconnects back off like this; a reader never gives up on a reachable server unless the
  // policy says so.
  retry_policy retry{std::chrono::milliseconds(50), std::chrono::milliseconds(5'000), 0,
                     std::chrono::milliseconds(0)};
  // An SSE connection with no byte (data or keep-alive) for this long is reconnected.
  std::chrono::milliseconds idle_timeout{60'000};
  // On 410: start again from the beginning (true) or stop with the failure (false).
  bool restart_on_resync = true;
  // SSE connections that end without delivering anything, in a row, before automatic mode
  // switches to long-poll.
  int sse_failures_before_fallback = 3;
};

struct read_event {
  enum class kind {
    messages,    // `messages`, in order; `offset` is where the next read starts
    up_to_date,  // caught up with the tail at `offset`
    closed,      // the stream is closed and everything was delivered: the last event
    resync,      // `error` says why; the reader starts again from the beginning
  };
  kind what = kind::messages;
  std::vector<std::string> messages;  // JSON: one value each; bytes: the bytes read
  bool json = false;                  // the stream's content type is JSON
  std::string offset;
  failure error;
};

enum class stop_reason { closed, caught_up, stopped_by_caller, cancelled };

struct reader_stats {
  std::uint64_t reconnects = 0;
  std::uint64_t resyncs = 0;
  bool using_long_poll = false;  // automatic mode fell back
};

class reader {
 public:
  static result<std::unique_ptr<reader>> open(client_options client, reader_options options);

  // Reads, calling on_event in order, until the stream is closed (closed), the tail is reached
  // with live_mode::none (caught_up), on_event returns false (stopped_by_caller) or cancel()
  // (cancelled). Fails on what retrying cannot fix: 404, 403, a resync with
  // restart_on_resync false, or the retry policy giving up.
  result<stop_reason> run(const std::function<bool(const read_event&)>& on_event);
  void cancel();

  // The offset after the last delivered message.
  std::string offset() const;
  reader_stats stats() const;

 private:
  reader(client_options client, reader_options options);
  enum class step { go_on, stop_closed, stop_caught_up, stop_caller, stop_cancelled };
  // Hands a read's messages (and closure or, catching up, reaching the tail) to on_event and
  // moves the offset on.
  result<step> deliver(read_page page, const std::function<bool(const read_event&)>& on_event,
                       bool catching_up);
  result<step> catch_up(const std::function<bool(const read_event&)>& on_event);
  result<step> follow_sse(const std::function<bool(const read_event&)>& on_event, bool& delivered);
  result<step> follow_long_poll(const std::function<bool(const read_event&)>& on_event);
  std::string target() const;
  // A fresh connection for the next request (a cancelled one cannot be reused).
  status reconnect();

  client_options client_options_;
  reader_options options_;
  std::unique_ptr<stream_client> client_;
  mutex client_mu_;  // guards client_ against cancel()
  std::atomic<bool> cancelled_{false};

  mutable mutex state_mu_;
  std::string offset_ GUARDED_BY(state_mu_);
  std::optional<std::string> cursor_ GUARDED_BY(state_mu_);
  bool up_to_date_ GUARDED_BY(state_mu_) = false;  // the last read reached the tail
  reader_stats stats_ GUARDED_BY(state_mu_);
  std::condition_variable wake_;  // a backoff wait ends early on cancel()
  bool sse_works_ = true;
  bool json_ = false;  // the stream's content type is JSON (learned by the catch-up read)
  std::mt19937_64 rng_{std::random_device{}()};
};

}  // namespace ordo::client
