// One node at a time does the cluster's background work (expiry, purge, retention, the reaper):
// the node whose connection holds a session-level advisory lock. When that node dies, or its
// connection does, PostgreSQL releases the lock and another node takes it at its next try.
//
// Leadership saves doing the work twice; it is not a fence. A leader learns that it lost its
// connection at its next check (options::check), and another node may have taken the lock by
// then, so for up to that long two nodes may both believe they lead. The background work is
// therefore written to be safe when two nodes run it at once: each step is a transaction that
// locks what it changes.
//
// Thread safety: a thread of its own; `on_change` is called on it, one call at a time, with
// true when this node starts leading and false when it stops. leading() is safe from any thread;
// the destructor stops the thread and gives the lock up (its connection closes).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "storage/postgres/stoppable_thread.hpp"

namespace ordo::postgres {

// The advisory lock of ordo's background work.
inline constexpr std::int64_t k_worker_lock = 0x6f72646f'776f726bLL;  // "ordowork"

struct leadership_options {
  std::string url;  // the database, as for connection::open()
  std::int64_t lock = k_worker_lock;
  // How often a follower tries to take the lock, and a leader checks that its connection (and so
  // the lock) is still there.
  std::chrono::milliseconds check{1000};
};

class leadership {
 public:
  using on_change = std::function<void(bool leading)>;

  static std::unique_ptr<leadership> start(leadership_options options, on_change change);
  ~leadership();
  leadership(const leadership&) = delete;
  leadership& operator=(const leadership&) = delete;

  bool leading() const { return leading_; }

 private:
  leadership(leadership_options options, on_change change);
  void run();
  void set_leading(bool leading);

  leadership_options options_;
  on_change change_;
  std::atomic<bool> leading_{false};
  stoppable_thread thread_;  // last: stopped before the members it uses go
};

}  // namespace ordo::postgres
