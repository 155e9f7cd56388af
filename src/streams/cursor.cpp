#include "streams/cursor.hpp"

#include <random>

#include "base/strict_integer.hpp"

namespace ordo {

std::uint64_t cursor_interval(std::chrono::system_clock::time_point now) {
  const auto since_epoch =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()) -
      std::chrono::seconds(k_cursor_epoch_unix_seconds);
  if (since_epoch.count() < 0) return 0;
  return static_cast<std::uint64_t>(since_epoch.count()) / k_cursor_interval_seconds;
}

std::string response_cursor(std::optional<std::string_view> client_cursor,
                            std::chrono::system_clock::time_point now,
                            std::uint64_t jitter_seconds) {
  const std::uint64_t current = cursor_interval(now);
  if (!client_cursor) return std::to_string(current);

  // ceil(jitter_seconds / interval), written so it cannot overflow.
  std::uint64_t jitter_intervals = jitter_seconds / k_cursor_interval_seconds +
                                   (jitter_seconds % k_cursor_interval_seconds != 0 ? 1 : 0);
  if (jitter_intervals == 0) jitter_intervals = 1;
  // JavaScript clients may read cursors as numbers; accepting client cursors only up to the
  // largest safe integer minus the jump keeps every reply exact and free of overflow.
  // A jump of a safe integer's size or more leaves no client cursor to accept (not even "0").
  if (jitter_intervals >= k_max_safe_integer) return std::to_string(current);
  const std::uint64_t max_client_cursor = k_max_safe_integer - jitter_intervals;
  const std::optional<std::uint64_t> client = parse_strict_uint(*client_cursor, max_client_cursor);
  if (!client || *client < current) return std::to_string(current);
  return std::to_string(*client + jitter_intervals);
}

std::uint64_t random_cursor_jitter_seconds() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  std::uniform_int_distribution<std::uint64_t> distribution(k_min_cursor_jitter_seconds,
                                                            k_max_cursor_jitter_seconds);
  return distribution(generator);
}

}  // namespace ordo
