// A background thread that waits on file descriptors and timeouts and can be stopped at once
// from another thread: the listener (notifier.hpp) and leadership (leadership.hpp) each run one.
// A pipe carries the stop, so a thread blocked in poll() on a database socket wakes for it too.
//
// Thread safety: start() and stop() from the owning thread; stopping(), stop_fd() and wait()
// from the background thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace ordo::postgres {

class stoppable_thread {
 public:
  stoppable_thread() = default;
  ~stoppable_thread() { stop(); }
  stoppable_thread(const stoppable_thread&) = delete;
  stoppable_thread& operator=(const stoppable_thread&) = delete;

  // Runs `body` on a new thread named `name`; false if the stop pipe cannot be made.
  bool start(std::string name, std::function<void()> body);
  // Tells the thread to stop and waits for it to end (a no-op once stopped).
  void stop();

  bool stopping() const { return stopping_; }
  // Readable once stop() was called: poll it beside the descriptors the thread waits on.
  int stop_fd() const { return fds_[0]; }
  // Waits `d`, or less if stopped; false when stopped.
  bool wait(std::chrono::milliseconds d) const;

 private:
  int fds_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace ordo::postgres
