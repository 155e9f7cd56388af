// Admission of catch-up reads to the database: at most `max_active` of them are queued for or
// running on the reader pool at once; the rest wait here, first come first served, each for
// the slot the next release() hands over.
//
// Why (seed 000: thousands of clients replaying history after a restart): without it a
// reconnect storm fills the reader pool's queue, every later read (a session snapshot, a live
// reader whose offset fell out of the tail cache) waits behind all of it, and past the queue's
// bound readers are refused and reconnect at once. Here a storm waits in line cheaply (a
// waiter is a callback; the connection's coroutine sleeps on its network thread), the reader pool
// keeps room for other reads, and the caller bounds how long one waits. Reads the tail cache
// serves never come here.
//
// Thread safety: every function may be called from any thread; mu_ guards the counters and the
// line. `on_admitted` callbacks run on the thread that calls release(), outside the lock, and
// must be cheap (post a wake-up, nothing more).
// Invariants: (1) active_ <= max_active_;
//             (2) a waiter is queued only while active_ == max_active_, so a free slot never
//                 sits beside a waiting reader;
//             (3) each ticket is settled once: admitted (its callback ran, the slot is its
//                 owner's) or withdrawn (cancel() returned true, it never gets a slot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>

#include "base/thread_annotations.hpp"

namespace ordo {

class catch_up_admission {
 public:
  using ticket = std::uint64_t;

  explicit catch_up_admission(std::size_t max_active);

  // Takes a slot at once (nullopt), or queues `on_admitted` and returns the ticket that
  // cancel() withdraws. The caller owns a slot from the moment `on_admitted` is called.
  std::optional<ticket> acquire(std::function<void()> on_admitted);
  // Withdraws a waiting ticket: true if it was still waiting (it will never get a slot); false
  // if it was admitted meanwhile, and the caller now owns a slot it must release().
  bool cancel(ticket t);
  // Gives up a slot: to the first waiter in line, or back to the pool.
  void release();

  std::size_t active() const;
  std::size_t waiting() const;
  std::size_t max_active() const { return max_active_; }

 private:
  struct waiter {
    ticket id;
    std::function<void()> on_admitted;
  };

  const std::size_t max_active_;
  mutable mutex mu_;
  std::size_t active_ GUARDED_BY(mu_) = 0;
  std::list<waiter> line_ GUARDED_BY(mu_);  // oldest first
  ticket next_ticket_ GUARDED_BY(mu_) = 1;
};

}  // namespace ordo
