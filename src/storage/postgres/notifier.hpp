// Cross-node wake-ups over PostgreSQL's LISTEN/NOTIFY: hints, never the truth.
//
// A node's writer, after a batch, sends one NOTIFY in the batch's transaction naming the streams
// it touched (notify_payload()); PostgreSQL delivers it only if and when the transaction
// commits, in commit order. Every other node holds one dedicated LISTEN connection (listener),
// and rechecks the streams a hint names against the table, which is the truth. Hints can be
// lost: while the listener is reconnecting, or when a payload would exceed PostgreSQL's limit
// (8000 bytes), in which case it says "recheck everything" instead. So the listener also asks
// for a recheck of everything after every (re)connect, and on a slow safety poll.
// (../shared/reference/postgres-research.md, section 2: one NOTIFY per batch costs nothing
// measurable at a few writers; one per request would.)
//
// Thread safety: the listener runs a thread of its own; `on_hint` is called on it, one call at
// a time. connected() is safe from any thread; the destructor stops the thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "storage/postgres/stoppable_thread.hpp"

namespace ordo::postgres {

// The channel ordo's nodes notify and listen on.
inline constexpr std::string_view k_wake_channel = "ordo_streams";
// The longest payload notify_payload() builds: under PostgreSQL's limit of 8000 bytes.
inline constexpr std::size_t k_notify_payload_limit = 7900;

// What a notification asks of a node.
struct wake_hint {
  std::string from_node;              // the node that committed (empty: the listener itself)
  bool all = false;                   // recheck every waiter (the streams are then empty)
  std::vector<std::int64_t> streams;  // the streams whose waiters to recheck, ascending
};

// "<node> <id>,<id>,..." for `streams` (sorted and without repeats in the payload), or
// "<node> *" when that would be longer than `limit`.
std::string notify_payload(std::string_view node, std::vector<std::int64_t> streams,
                           std::size_t limit = k_notify_payload_limit);
// The hint in a payload, or nullopt if it is not one of notify_payload()'s.
std::optional<wake_hint> parse_notify_payload(std::string_view payload);

struct listener_options {
  std::string url;  // the database, as for connection::open()
  std::string channel = std::string(k_wake_channel);
  // A recheck of everything at least this often, whatever arrives.
  std::chrono::milliseconds safety_poll{1000};
  // Reconnects wait 100 ms, then twice as long each time, up to this.
  std::chrono::milliseconds max_backoff{5000};
};

class listener {
 public:
  using on_hint = std::function<void(const wake_hint&)>;

  // Starts the listener's thread. It connects and LISTENs, then calls `hint` with {all = true}
  // (anything may have been missed before), and after that with every notification, with
  // {all = true} after each reconnect and at each safety poll.
  static std::unique_ptr<listener> start(listener_options options, on_hint hint);
  ~listener();
  listener(const listener&) = delete;
  listener& operator=(const listener&) = delete;

  // Whether the LISTEN connection is up (for /ready).
  bool connected() const { return connected_; }
  // How many times it has connected (1 after the first connect).
  std::uint64_t connects() const { return connects_; }

 private:
  listener(listener_options options, on_hint hint);
  void run();
  // Listens on one connection until it breaks or the listener stops; false when stopping.
  bool listen_once();

  listener_options options_;
  on_hint hint_;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> connects_{0};
  stoppable_thread thread_;  // last: stopped before the members it uses go
};

}  // namespace ordo::postgres
