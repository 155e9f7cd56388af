// Stream offsets: the opaque tokens clients resume from.
//
// Grammar (33 bytes, fixed width, so byte-wise order is stream order):
//
//   offset   = prefix "_" position
//   prefix   = 16 lowercase hex digits
//   position = 16 decimal digits: the number of messages (appends) before this point
//
// The prefix is derived from the database epoch and the stream family's incarnation
// (offset_prefix_for). All offsets of one stream share it, and so do its forks, which use
// their source's offset space. An offset whose prefix differs was minted by another database,
// by a restored or replaced one, or for an earlier stream at the same path: it is answered
// with 410 and a resync pointer, never with someone else's data.
//
// "0000000000000000_0000000000000000" is the start of every stream in every database (the
// protocol's clients use it as a fork offset meaning "before any data"). The sentinels "-1"
// (start) and "now" (tail) are parsed here too; ordo never mints them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "base/stream_position.hpp"

namespace ordo {

inline constexpr std::size_t k_offset_length = 33;
inline constexpr std::uint64_t k_max_offset_position = 9'999'999'999'999'999;
inline constexpr std::string_view k_zero_offset = "0000000000000000_0000000000000000";

// A position in a stream, in the offset space of its family (prefix). Position 0 is the start.
struct stream_offset {
  std::uint64_t prefix = 0;
  stream_position position;

  bool is_zero() const { return prefix == 0 && position.is_start(); }
  friend bool operator==(const stream_offset&, const stream_offset&) = default;
};

std::string format_offset(stream_offset offset);

// Parses a minted offset token (not a sentinel).
result<stream_offset> parse_offset_token(std::string_view text);

enum class offset_request_kind { start, now, at };

struct offset_request {
  offset_request_kind kind = offset_request_kind::start;
  stream_offset at;  // meaningful when kind == at
};

// Parses the value of the `offset` query parameter: "-1", "now", or a token.
result<offset_request> parse_offset_param(std::string_view text);

// The prefix of every offset of a stream family in a database (a 64-bit mix of both, never 0).
std::uint64_t offset_prefix_for(std::uint64_t database_epoch, std::uint64_t incarnation);

}  // namespace ordo
