// Harness: offsets and cursors, the tokens clients send back (streams/offset.hpp,
// streams/cursor.hpp). A parsed offset token re-serialises to exactly its text (one spelling per
// offset, 33 bytes); a formatted offset parses back to itself; the `offset` parameter's sentinels
// are exactly "-1" (or the zero offset) and "now"; a reply cursor is a strict decimal integer that
// never goes behind the client's or the current interval.
#include <fuzzer/FuzzedDataProvider.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "base/strict_integer.hpp"
#include "fuzz/check.hpp"
#include "streams/cursor.hpp"
#include "streams/offset.hpp"

using ordo::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const int mode = in.ConsumeIntegralInRange(0, 2);
  if (mode == 0) {
    std::string text = in.ConsumeRemainingBytesAsString();
    if (auto token = ordo::parse_offset_token(text)) {
      check(text.size() == ordo::k_offset_length, "a token is 33 bytes");
      check(ordo::format_offset(*token) == text, "a parsed token re-serialises to its text");
      check(token->position.value() <= ordo::k_max_offset_position, "position in range");
    }
    if (auto param = ordo::parse_offset_param(text)) {
      switch (param->kind) {
        case ordo::offset_request_kind::start:
          // The universal zero offset is the start too (offset.hpp).
          check(text == "-1" || text == ordo::k_zero_offset, "start is -1 or the zero offset");
          break;
        case ordo::offset_request_kind::now:
          check(text == "now", "tail is now");
          break;
        case ordo::offset_request_kind::at:
          check(ordo::format_offset(param->at) == text, "a parsed offset re-serialises");
          break;
      }
    }
  } else if (mode == 1) {
    ordo::stream_offset offset;
    offset.prefix = in.ConsumeIntegral<std::uint64_t>();
    offset.position = ordo::stream_position(
        in.ConsumeIntegralInRange<std::uint64_t>(0, ordo::k_max_offset_position));
    std::string text = ordo::format_offset(offset);
    check(text.size() == ordo::k_offset_length, "a formatted offset is 33 bytes");
    auto back = ordo::parse_offset_token(text);
    check(back && *back == offset, "a formatted offset parses back to itself");
    // Byte-wise order is stream order within one prefix.
    ordo::stream_offset later = offset;
    if (offset.position.value() < ordo::k_max_offset_position) {
      later.position = offset.position.next();
      check(ordo::format_offset(later) > text, "byte order is stream order");
    }
  } else {
    // Up to about the year 2242: system_clock counts nanoseconds in 64 bits.
    const std::int64_t seconds = in.ConsumeIntegralInRange<std::int64_t>(0, 1LL << 33);
    const std::uint64_t jitter = in.ConsumeIntegralInRange<std::uint64_t>(0, 1ULL << 62);
    const bool has_cursor = in.ConsumeBool();
    std::string client = in.ConsumeRemainingBytesAsString();
    const auto now = std::chrono::system_clock::time_point(std::chrono::seconds(seconds));
    std::optional<std::string_view> client_cursor;
    if (has_cursor) client_cursor = client;
    std::string reply = ordo::response_cursor(client_cursor, now, jitter);
    auto value = ordo::parse_strict_uint(reply, UINT64_MAX);
    check(value.has_value(), "a cursor is a strict decimal integer");
    check(*value >= ordo::cursor_interval(now), "never behind the current interval");
    if (has_cursor) {
      if (auto c = ordo::parse_strict_uint(client, ordo::k_max_safe_integer)) {
        check(*value > *c || *value == ordo::cursor_interval(now), "never behind the client's");
        check(*value <= ordo::k_max_safe_integer || *value == ordo::cursor_interval(now),
              "a jump stays a safe integer");
      }
    }
  }
  return 0;
}
