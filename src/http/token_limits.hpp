// Per-token caps: how fast one token may send requests, and how many of its requests may be in
// flight at once (long-lived reads included). Past either, 429 too_many_requests with
// Retry-After. They keep one token (a leaked one, a runaway agent) from taking the server from
// everyone else; the per-server limits (docs/OPERATIONS.md) still apply on top.
//
// The rate is a token bucket per principal subject: `rate_per_second` refill, `burst` deep.
// Subjects are verified tokens only (an unauthenticated request never reaches here), and the
// table forgets idle subjects once it holds k_max_tracked_subjects, so its memory stays
// bounded.
//
// Thread safety: admit() and the in_flight guard may run on any thread; mu_ guards the table.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "base/metrics.hpp"
#include "base/result.hpp"
#include "base/thread_annotations.hpp"

namespace ordo::http {

inline constexpr std::size_t k_max_tracked_subjects = 10'000;

struct token_limit_options {
  double requests_per_second = 0;  // 0: no rate cap
  double burst = 0;                // the bucket's depth; 0: one second's worth (at least 1)
  std::size_t max_in_flight = 0;   // 0: no cap
};

class token_limits {
 public:
  explicit token_limits(token_limit_options options) : options_(options) {}

  bool enabled() const { return options_.requests_per_second > 0 || options_.max_in_flight > 0; }

  // One request of `subject` in flight until the guard is destroyed.
  class in_flight {
   public:
    in_flight() = default;
    in_flight(token_limits* owner, std::string subject)
        : owner_(owner), subject_(std::move(subject)) {}
    in_flight(in_flight&& o) noexcept : owner_(o.owner_), subject_(std::move(o.subject_)) {
      o.owner_ = nullptr;
    }
    in_flight& operator=(in_flight&& o) noexcept {
      if (this != &o) {
        if (owner_) owner_->leave(subject_);
        owner_ = o.owner_;
        subject_ = std::move(o.subject_);
        o.owner_ = nullptr;
      }
      return *this;
    }
    ~in_flight() {
      if (owner_) owner_->leave(subject_);
    }

   private:
    token_limits* owner_ = nullptr;
    std::string subject_;
  };

  // Admits a request of `subject`, or the 429 to answer (with a retry_after detail).
  result<in_flight> admit(const std::string& subject, std::chrono::steady_clock::time_point now);

  // Requests refused by each cap, for /metrics.
  metrics::counter rate_refusals;
  metrics::counter in_flight_refusals;

 private:
  struct usage {
    double tokens = 0;
    std::chrono::steady_clock::time_point refilled{};
    std::size_t in_flight = 0;
  };
  void leave(const std::string& subject);
  void forget_idle(std::chrono::steady_clock::time_point now) REQUIRES(mu_);

  const token_limit_options options_;
  mutex mu_;
  std::unordered_map<std::string, usage> usage_ GUARDED_BY(mu_);
};

}  // namespace ordo::http
