#include "base/strict_integer.hpp"

namespace ordo {

std::optional<std::uint64_t> parse_strict_uint(std::string_view text, std::uint64_t max_value) {
  if (text.empty()) return std::nullopt;
  if (text.size() > 1 && text.front() == '0') return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    // value * 10 + digit <= max_value, checked without overflowing.
    if (digit > max_value || value > (max_value - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace ordo
