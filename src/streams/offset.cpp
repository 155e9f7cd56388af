#include "streams/offset.hpp"

#include <cstdio>

namespace ordo {

namespace {

constexpr std::size_t k_prefix_digits = 16;
constexpr std::size_t k_position_digits = 16;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

failure malformed(std::string_view text, std::string_view why) {
  return make_failure(failure_kind::invalid, "invalid_offset",
                      "offset '" + std::string(text.substr(0, 64)) +
                          "' is malformed: " + std::string(why) +
                          ". Use -1, now, or a Stream-Next-Offset value returned by this server.");
}

// splitmix64's finaliser: a cheap, well-mixing bijection on 64-bit values.
std::uint64_t mix64(std::uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace

std::string format_offset(stream_offset offset) {
  char buf[k_offset_length + 1];
  std::snprintf(buf, sizeof buf, "%016llx_%016llu", static_cast<unsigned long long>(offset.prefix),
                static_cast<unsigned long long>(offset.position.value()));
  return std::string(buf, k_offset_length);
}

result<stream_offset> parse_offset_token(std::string_view text) {
  if (text.size() != k_offset_length) {
    return malformed(text, "an offset is " + std::to_string(k_offset_length) + " characters long");
  }
  if (text[k_prefix_digits] != '_') return malformed(text, "expected '_' after 16 hex digits");
  stream_offset out;
  std::uint64_t position = 0;
  for (std::size_t i = 0; i < k_prefix_digits; ++i) {
    int v = hex_value(text[i]);
    if (v < 0) return malformed(text, "the part before '_' must be lowercase hex digits");
    out.prefix = (out.prefix << 4) | static_cast<std::uint64_t>(v);
  }
  for (std::size_t i = k_prefix_digits + 1; i < k_offset_length; ++i) {
    char c = text[i];
    if (c < '0' || c > '9') return malformed(text, "the part after '_' must be decimal digits");
    position = position * 10 + static_cast<std::uint64_t>(c - '0');
  }
  out.position = stream_position{position};
  static_assert(k_position_digits == 16);
  return out;
}

result<offset_request> parse_offset_param(std::string_view text) {
  if (text.empty()) return malformed(text, "the offset parameter is empty");
  if (text == "-1") return offset_request{offset_request_kind::start, {}};
  if (text == "now") return offset_request{offset_request_kind::now, {}};
  auto token = parse_offset_token(text);
  if (!token) return std::move(token).error();
  if (token->is_zero()) return offset_request{offset_request_kind::start, {}};
  return offset_request{offset_request_kind::at, *token};
}

std::uint64_t offset_prefix_for(std::uint64_t database_epoch, std::uint64_t incarnation) {
  std::uint64_t p = mix64(database_epoch ^ mix64(incarnation));
  return p == 0 ? 1 : p;  // 0 is reserved for the universal start offset
}

}  // namespace ordo
