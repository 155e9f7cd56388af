#include "base/strong_id.hpp"

#include <gtest/gtest.h>

#include <concepts>
#include <cstdint>
#include <sstream>
#include <type_traits>
#include <unordered_set>

namespace ordo {
namespace {

using apple_id = strong_id<struct apple_tag>;
using pear_id = strong_id<struct pear_tag>;
using small_id = strong_id<struct small_tag, std::uint8_t>;

TEST(strong_id, holds_its_value_and_compares_with_its_own_kind) {
  apple_id a{7};
  EXPECT_EQ(a.value(), 7);
  EXPECT_EQ(apple_id().value(), 0) << "default: none yet";
  EXPECT_EQ(a, apple_id{7});
  EXPECT_NE(a, apple_id{8});
  EXPECT_LT(a, apple_id{8});
  EXPECT_GE(a, apple_id{7});
  static_assert(apple_id{1} < apple_id{2}, "usable in constant expressions");
}

TEST(strong_id, next_is_the_following_value) {
  EXPECT_EQ(apple_id{7}.next(), apple_id{8});
  EXPECT_EQ(small_id{254}.next().value(), 255);
}

TEST(strong_id, hashes_like_its_value_for_unordered_containers) {
  std::unordered_set<apple_id> seen{apple_id{1}, apple_id{2}, apple_id{1}};
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_EQ(std::hash<apple_id>{}(apple_id{5}), std::hash<std::int64_t>{}(5));
}

TEST(strong_id, prints_as_its_bare_value) {
  std::ostringstream out;
  out << apple_id{42};
  EXPECT_EQ(out.str(), "42");
}

// ---- error paths: what does not compile -------------------------------------------------------

TEST(strong_id, converts_neither_from_nor_to_an_integer_implicitly) {
  static_assert(!std::is_convertible_v<std::int64_t, apple_id>, "no implicit construction");
  static_assert(!std::is_convertible_v<apple_id, std::int64_t>, "no implicit conversion out");
  static_assert(std::is_constructible_v<apple_id, std::int64_t>, "explicit construction works");
  static_assert(!std::is_constructible_v<std::int64_t, apple_id>, "not even explicitly out");
  SUCCEED();
}

TEST(strong_id, two_kinds_neither_convert_nor_compare) {
  static_assert(!std::is_convertible_v<apple_id, pear_id>);
  static_assert(!std::is_constructible_v<pear_id, apple_id>);
  static_assert(!std::equality_comparable_with<apple_id, pear_id>);
  static_assert(!std::totally_ordered_with<apple_id, pear_id>);
  static_assert(!std::equality_comparable_with<apple_id, std::int64_t>);
  SUCCEED();
}

TEST(strong_id, has_no_arithmetic) {
  auto adds = [](auto x) {
    return requires {
      x + x;
    };
  };
  auto increments = [](auto x) {
    return requires {
      ++x;
    };
  };
  EXPECT_FALSE(adds(apple_id{1}));
  EXPECT_FALSE(increments(apple_id{1}));
  EXPECT_TRUE(adds(std::int64_t{1})) << "the checks themselves work";
}

}  // namespace
}  // namespace ordo
