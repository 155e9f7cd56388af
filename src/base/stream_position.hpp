// The numbers that say where something is in ordo's streams, each a type of its own so that
// two kinds cannot be mixed by accident (Redpanda's model::offset, STYLE.md):
//
//   stream_id        a stream's row id (streams.id): which stream. A strong_id: it names, and
//                    has no arithmetic.
//   stream_position  a point in a stream's sequence of messages, counted in messages.
//
// They live in base/ rather than streams/ because storage/ (below streams/) takes and returns
// them: SQL is the one place they become integers (storage/sqlite/stream_tables.cpp), and text
// the other (streams/offset.cpp, JSON, logs), so everything between sees only these types.
//
// stream_position's meaning. Position p is the point after the stream's p-th message, and the
// message at position p is the p-th message (its `seq` column): position 0 is the start, before
// the first message, and no message has it; a stream's tail is the position of its last message
// (0 when it has none), and the next append gets tail.next(). A range of messages is written
// (after, upto]: the messages at positions after+1 .. upto, `upto - after` of them. A fork's
// own messages continue its source's positions (base_seq is where they start), so positions of
// a family share one space, and the offset token (streams/offset.hpp) prints a position as
// 16 decimal digits.
//
//   stream_position after{5};
//   after.next();                     // position 6: where the next message goes
//   after + 3;                        // position 8: after three more messages
//   stream_position{8} - after;       // 3: the messages in (after, 8]
//   after.value();                    // 5: the integer, taken where it is stored or printed
//
// Only these operations exist: a position plus a position, a position minus a count, or a
// position compared with an integer do not compile. All are constexpr and inline, and the type is
// a trivially copyable uint64_t, so it costs nothing on the append path.
#pragma once

#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>

#include "base/strong_id.hpp"

namespace ordo {

// A stream's id: the streams table's rowid (SQLite integer, hence int64_t). 0 is "none".
using stream_id = strong_id<struct stream_id_tag>;

class stream_position {
 public:
  using rep_type = std::uint64_t;

  // The start of every stream: before its first message.
  constexpr stream_position() noexcept = default;
  constexpr explicit stream_position(rep_type value) noexcept : value_(value) {}
  static constexpr stream_position start() noexcept { return stream_position(); }

  // The integer: taken only where a position is stored (SQL) or printed (offsets, JSON, logs).
  constexpr rep_type value() const noexcept { return value_; }
  constexpr bool is_start() const noexcept { return value_ == 0; }

  // The position of the message after this one. Precondition: not the largest position.
  constexpr stream_position next() const noexcept {
    assert(value_ < std::numeric_limits<rep_type>::max());
    return stream_position(value_ + 1);
  }

  // The position `count` messages after this one. Precondition: it does not overflow.
  friend constexpr stream_position operator+(stream_position at, rep_type count) noexcept {
    assert(count <= std::numeric_limits<rep_type>::max() - at.value_);
    return stream_position(at.value_ + count);
  }
  constexpr stream_position& operator+=(rep_type count) noexcept { return *this = *this + count; }

  // How many messages lie in (from, to]. Precondition: from <= to (a distance, never negative).
  friend constexpr rep_type operator-(stream_position to, stream_position from) noexcept {
    assert(from.value_ <= to.value_);
    return to.value_ - from.value_;
  }

  friend constexpr bool operator==(stream_position, stream_position) noexcept = default;
  friend constexpr auto operator<=>(stream_position, stream_position) noexcept = default;

  // For test failures and logs: the bare integer.
  friend std::ostream& operator<<(std::ostream& out, stream_position p) { return out << p.value_; }

 private:
  rep_type value_ = 0;
};

}  // namespace ordo

template <>
struct std::hash<ordo::stream_position> {
  std::size_t operator()(ordo::stream_position p) const noexcept {
    return std::hash<std::uint64_t>{}(p.value());
  }
};
