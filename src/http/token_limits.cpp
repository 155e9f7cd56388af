#include "http/token_limits.hpp"

#include <algorithm>
#include <cmath>

namespace ordo::http {

namespace {

double depth(const token_limit_options& o) {
  return o.burst > 0 ? o.burst : std::max(1.0, o.requests_per_second);
}

failure too_many(std::string message, std::int64_t retry_after_seconds) {
  return make_failure(failure_kind::too_many_requests, "too_many_requests", std::move(message))
      .with("retry_after", std::to_string(std::max<std::int64_t>(1, retry_after_seconds)));
}

}  // namespace

result<token_limits::in_flight> token_limits::admit(const std::string& subject,
                                                    std::chrono::steady_clock::time_point now) {
  mutex_lock lock(mu_);
  if (usage_.size() >= k_max_tracked_subjects && !usage_.count(subject)) forget_idle(now);
  auto [it, fresh] = usage_.try_emplace(subject);
  usage& u = it->second;
  if (fresh) {
    u.tokens = depth(options_);
    u.refilled = now;
  }
  if (options_.max_in_flight > 0 && u.in_flight >= options_.max_in_flight) {
    in_flight_refusals.add();
    return too_many("this token has " + std::to_string(u.in_flight) +
                        " requests in flight, its cap (--token-max-in-flight); finish or close "
                        "some first",
                    1);
  }
  if (options_.requests_per_second > 0) {
    double elapsed = std::chrono::duration<double>(now - u.refilled).count();
    u.tokens = std::min(depth(options_), u.tokens + elapsed * options_.requests_per_second);
    u.refilled = now;
    if (u.tokens < 1) {
      rate_refusals.add();
      auto wait =
          static_cast<std::int64_t>(std::ceil((1 - u.tokens) / options_.requests_per_second));
      return too_many("this token sent more than its " +
                          std::to_string(static_cast<long long>(options_.requests_per_second)) +
                          " requests per second (--token-max-requests-per-second)",
                      wait);
    }
    u.tokens -= 1;
  }
  u.in_flight += 1;
  return in_flight(this, subject);
}

void token_limits::leave(const std::string& subject) {
  mutex_lock lock(mu_);
  auto it = usage_.find(subject);
  if (it != usage_.end() && it->second.in_flight > 0) it->second.in_flight -= 1;
}

void token_limits::forget_idle(std::chrono::steady_clock::time_point now) {
  // Idle: nothing in flight, and a bucket that would be full again by now.
  for (auto it = usage_.begin(); it != usage_.end();) {
    const usage& u = it->second;
    double refill =
        options_.requests_per_second > 0
            ? std::chrono::duration<double>(now - u.refilled).count() * options_.requests_per_second
            : depth(options_);
    bool idle = u.in_flight == 0 && u.tokens + refill >= depth(options_);
    it = idle ? usage_.erase(it) : std::next(it);
  }
}

}  // namespace ordo::http
