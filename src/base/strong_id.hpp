// strong_id<Tag, Rep>: a number that names one kind of thing — a session's number, a stream's
// id, a position in a stream — as a type of its own, so that two kinds cannot be mixed by
// accident (Redpanda's model::offset, STYLE.md). A strong_id neither converts from nor to its
// integer implicitly, and compares only with its own kind.
//
//   using session_number = strong_id<struct session_number_tag>;
//   session_number n{7};           // explicit: `session_number n = 7;` does not compile
//   n.value();                     // 7: the integer, taken where it is stored or shown
//   n.next();                      // session_number{8}: for counters that hand ids out in order
//   n == session_number{7};        // ==, !=, <, <=, >, >= with its own kind only
//   std::unordered_set<session_number> seen;  // std::hash
//
// That is all it has: arithmetic that means something for one kind (the distance between two
// positions, a position plus a count) is written for that kind, next to it, where its meaning
// and its invariants can be stated. The tag is any type, usually declared in the alias itself;
// Rep is any integer type (std::int64_t, SQLite's integer, by default).
#pragma once

#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <type_traits>

namespace ordo {

template <class Tag, class Rep = std::int64_t>
class strong_id {
  static_assert(std::is_integral_v<Rep>, "a strong_id is an integer of its own kind");

 public:
  using tag_type = Tag;
  using rep_type = Rep;

  // Rep{}, i.e. 0: "none yet" for a field that is filled in later.
  constexpr strong_id() noexcept = default;
  constexpr explicit strong_id(Rep value) noexcept : value_(value) {}

  constexpr Rep value() const noexcept { return value_; }

  // The id after this one. Precondition: this is not the largest Rep.
  constexpr strong_id next() const noexcept {
    assert(value_ < std::numeric_limits<Rep>::max());
    return strong_id(static_cast<Rep>(value_ + 1));
  }

  friend constexpr bool operator==(strong_id, strong_id) noexcept = default;
  friend constexpr auto operator<=>(strong_id, strong_id) noexcept = default;

  // For test failures and logs: the bare integer.
  friend std::ostream& operator<<(std::ostream& out, strong_id id) { return out << id.value_; }

 private:
  Rep value_{};
};

}  // namespace ordo

template <class Tag, class Rep>
struct std::hash<ordo::strong_id<Tag, Rep>> {
  std::size_t operator()(ordo::strong_id<Tag, Rep> id) const noexcept {
    return std::hash<Rep>{}(id.value());
  }
};
