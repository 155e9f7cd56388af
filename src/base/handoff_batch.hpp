// Hands work to other threads once per batch, not once per item.
//
// The writer answers a batch of appends by handing each caller's continuation to the network
// thread that runs its connection. One hand-off per append takes the target's queue lock once
// per append and may wake the target (and be preempted by it) once per append; on machines
// where a context switch is expensive that costs more than the appends themselves (issue 19).
// While a handoff_batch is open on a thread, code that would hand a call to a target instead
// adds it here; when the scope closes, each target gets one hand-off carrying its calls, in
// the order they were added.
//
// Thread safety: a batch belongs to the thread that opened it; current() is per thread.
// Invariants: (1) every added call is handed off exactly once, when the scope closes;
//             (2) calls for one target run in the order they were added.
#pragma once

#include <functional>
#include <vector>

namespace ordo {

class handoff_batch {
 public:
  using call = std::function<void()>;
  // Hands `calls` to the target in one go (for an Asio executor: one post that runs them all).
  using deliver = std::function<void(std::vector<call> calls)>;

  // Opens the batch on this thread (batches do not nest: an inner one adds to the outer).
  handoff_batch();
  // Hands every target its calls.
  ~handoff_batch();
  handoff_batch(const handoff_batch&) = delete;
  handoff_batch& operator=(const handoff_batch&) = delete;

  // The batch open on this thread, or nullptr.
  static handoff_batch* current();

  // Adds `c` for `target` (any stable address naming it, e.g. its execution context) and
  // returns true, if the target has calls already; false otherwise (then add_target()). Two
  // steps so that the common case builds no `deliver`.
  bool add(const void* target, call& c);
  // Adds `c` for a target new to this batch, which `deliver_to` hands its calls to.
  void add_target(const void* target, deliver deliver_to, call c);

 private:
  struct target_calls {
    const void* target;
    deliver deliver_to;
    std::vector<call> calls;
  };
  handoff_batch* outer_;
  std::vector<target_calls> targets_;  // few: one per network thread
};

}  // namespace ordo
