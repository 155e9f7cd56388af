// Clang's thread-safety analysis (-Wthread-safety): which mutex guards which member, which
// functions must hold it, checked at compile time.
//
// Every class shared across threads declares its mutexes as `ordo::mutex` (std::mutex with the
// capability attribute, which libstdc++'s own mutex lacks), marks the members each one guards
// with GUARDED_BY, and the private functions that expect the lock held with REQUIRES. A
// `mutex_lock` holds the mutex for its scope, like std::unique_lock, and is what a
// std::condition_variable waits with (`lock.wait(cv)`).
//
// The analysis runs in the `thread-safety` build (clang, -Wthread-safety -Werror; `make test`
// runs it, see CMakePresets.json). Under g++ the macros expand to nothing and `ordo::mutex` is a
// std::mutex with a different name.
//
// The analysis does not know that a wait's predicate runs under the lock: a predicate that reads
// guarded members says so itself, `lock.wait(cv_, [&]() REQUIRES(mu_) { return ready_; })`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <utility>

#if defined(__clang__)
#define ORDO_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define ORDO_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) ORDO_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY ORDO_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) ORDO_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) ORDO_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) ORDO_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) ORDO_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) ORDO_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define ACQUIRE(...) ORDO_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) ORDO_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) ORDO_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) ORDO_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) ORDO_THREAD_ANNOTATION(assert_capability(x))
#define RETURN_CAPABILITY(x) ORDO_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS ORDO_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace ordo {

// A std::mutex the analysis knows as a capability.
class CAPABILITY("mutex") mutex {
 public:
  mutex() = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class mutex_lock;
  std::mutex mu_;
};

// Holds `mu` from construction to destruction (or to unlock()); the one way to wait on a
// std::condition_variable for a guarded state.
class SCOPED_CAPABILITY mutex_lock {
 public:
  explicit mutex_lock(mutex& mu) ACQUIRE(mu) : lock_(mu.mu_) {}
  ~mutex_lock() RELEASE() = default;
  mutex_lock(const mutex_lock&) = delete;
  mutex_lock& operator=(const mutex_lock&) = delete;

  // Lets go early (before a call that must not run under the lock), and takes it again.
  void unlock() RELEASE() { lock_.unlock(); }
  void lock() ACQUIRE() { lock_.lock(); }

  // Release the mutex while waiting and hold it again on return, as std::condition_variable's
  // waits do (the timed ones return the predicate's last value).
  template <class Predicate>
  void wait(std::condition_variable& cv, Predicate ready) {
    cv.wait(lock_, std::move(ready));
  }
  template <class Clock, class Duration, class Predicate>
  bool wait_until(std::condition_variable& cv,
                  const std::chrono::time_point<Clock, Duration>& deadline, Predicate ready) {
    return cv.wait_until(lock_, deadline, std::move(ready));
  }
  template <class Rep, class Period, class Predicate>
  bool wait_for(std::condition_variable& cv, const std::chrono::duration<Rep, Period>& timeout,
                Predicate ready) {
    return cv.wait_for(lock_, timeout, std::move(ready));
  }

 private:
  std::unique_lock<std::mutex> lock_;
};

}  // namespace ordo
