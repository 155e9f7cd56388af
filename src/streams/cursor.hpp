// CDN-collapsing cursors for live reads (Durable Streams protocol, "Caching and Collapsing").
//
// Clients echo the last cursor as ?cursor=; it is part of the URL and so of a CDN's cache key.
// Time is cut into 20-second intervals counted from 2024-10-09T00:00:00Z, and the cursor is the
// current interval number, so clients waiting together share one cache key (and one upstream
// request) while the key still changes as time passes. A cursor must never go backwards, or a
// client could be served an older cached response forever: when the client's cursor is already
// at or past the current interval, the reply jumps ahead of it by a random jitter.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ordo {

inline constexpr std::uint64_t k_cursor_interval_seconds = 20;
// 2024-10-09T00:00:00Z in seconds since the Unix epoch.
inline constexpr std::int64_t k_cursor_epoch_unix_seconds = 1728432000;
// Jitter added when the client's cursor is not behind the current interval.
inline constexpr std::uint64_t k_min_cursor_jitter_seconds = 1;
inline constexpr std::uint64_t k_max_cursor_jitter_seconds = 3600;

// The number of whole intervals between the cursor epoch and `now`; 0 before the epoch.
std::uint64_t cursor_interval(std::chrono::system_clock::time_point now);

// The cursor to return: the current interval, or, when `client_cursor` is a decimal integer at
// or past it, client_cursor + max(1, ceil(jitter_seconds / 20)), which is strictly greater.
// A client cursor that is not a strict decimal integer (see parse_strict_uint), or is so large
// that the reply would pass k_max_safe_integer, is ignored: the reply is then the current
// interval. Only a client that invents cursors can send one.
std::string response_cursor(std::optional<std::string_view> client_cursor,
                            std::chrono::system_clock::time_point now,
                            std::uint64_t jitter_seconds);

// Uniform in [k_min_cursor_jitter_seconds, k_max_cursor_jitter_seconds]. Thread-safe: each
// thread has its own generator, seeded from std::random_device.
std::uint64_t random_cursor_jitter_seconds();

}  // namespace ordo
