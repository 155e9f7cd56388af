#include "base/duration.hpp"

#include <array>
#include <cstdint>
#include <limits>

namespace ordo {
namespace {

constexpr std::int64_t k_ms_per_second = 1000;
constexpr std::int64_t k_ms_per_minute = 60 * k_ms_per_second;
constexpr std::int64_t k_ms_per_hour = 60 * k_ms_per_minute;
constexpr std::int64_t k_ms_per_day = 24 * k_ms_per_hour;

struct duration_unit {
  std::string_view suffix;
  std::int64_t ms_per_unit;
};

// Largest first, so format_duration picks the shortest exact form.
constexpr std::array<duration_unit, 5> k_units{{
    {"d", k_ms_per_day},
    {"h", k_ms_per_hour},
    {"m", k_ms_per_minute},
    {"s", k_ms_per_second},
    {"ms", 1},
}};

failure invalid_duration(std::string_view text) {
  return make_failure(
      failure_kind::invalid, "invalid_duration",
      "duration '" + std::string(text) +
          "' is malformed: expected a non-negative whole number with an optional "
          "unit ms, s, m, h or d (e.g. 500ms, 30s, 2m, 1h, 7d; a bare number is seconds)");
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t digits_end = 0;
  while (digits_end < text.size() && is_digit(text[digits_end]))
    ++digits_end;
  if (digits_end == 0) return invalid_duration(text);

  const std::string_view suffix = text.substr(digits_end);
  std::int64_t ms_per_unit = 0;
  if (suffix.empty()) {
    ms_per_unit = k_ms_per_second;
  } else {
    for (const duration_unit& unit : k_units) {
      if (suffix == unit.suffix) ms_per_unit = unit.ms_per_unit;
    }
    if (ms_per_unit == 0) return invalid_duration(text);
  }

  // The result is held in int64 milliseconds, so the count times the unit must fit there.
  const std::int64_t max_count = std::numeric_limits<std::int64_t>::max() / ms_per_unit;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < digits_end; ++i) {
    const std::int64_t digit = text[i] - '0';
    if (count > (max_count - digit) / 10) return invalid_duration(text);
    count = count * 10 + digit;
  }
  return std::chrono::milliseconds(count * ms_per_unit);
}

std::string format_duration(std::chrono::milliseconds duration) {
  const std::int64_t ms = duration.count();
  if (ms == 0) return "0s";
  for (const duration_unit& unit : k_units) {
    if (ms % unit.ms_per_unit == 0) {
      return std::to_string(ms / unit.ms_per_unit) + std::string(unit.suffix);
    }
  }
  return std::to_string(ms) + "ms";  // unreachable: every count is a whole number of ms
}

}  // namespace ordo
