#include "base/stream_position.hpp"

#include <gtest/gtest.h>

#include <concepts>
#include <cstdint>
#include <sstream>
#include <type_traits>
#include <unordered_set>

namespace ordo {
namespace {

// Zero-cost: copied like the integer it holds, usable in constant expressions.
static_assert(std::is_trivially_copyable_v<stream_position>);
static_assert(sizeof(stream_position) == sizeof(std::uint64_t));
static_assert(std::is_trivially_copyable_v<stream_id>);
static_assert(sizeof(stream_id) == sizeof(std::int64_t));

// Neither kind converts from or to an integer, nor to the other kind.
static_assert(!std::is_convertible_v<std::uint64_t, stream_position>);
static_assert(!std::is_convertible_v<stream_position, std::uint64_t>);
static_assert(!std::is_convertible_v<std::int64_t, stream_id>);
static_assert(!std::is_convertible_v<stream_id, std::int64_t>);
static_assert(!std::is_constructible_v<stream_position, stream_id>);
static_assert(!std::is_constructible_v<stream_id, stream_position>);
static_assert(!std::equality_comparable_with<stream_position, stream_id>);
static_assert(!std::totally_ordered_with<stream_position, std::uint64_t>);

// Only the arithmetic that means something: position + count, position - position.
template <class A, class B>
concept addable = requires(A a, B b) {
  a + b;
};
template <class A, class B>
concept subtractable = requires(A a, B b) {
  a - b;
};
static_assert(addable<stream_position, std::uint64_t>);
static_assert(std::same_as<decltype(stream_position{} + std::uint64_t{1}), stream_position>);
static_assert(!addable<stream_position, stream_position>, "two positions do not add up");
static_assert(!addable<stream_position, stream_id>);
static_assert(subtractable<stream_position, stream_position>);
static_assert(std::same_as<decltype(stream_position{} - stream_position{}), std::uint64_t>);
static_assert(!subtractable<stream_position, std::uint64_t>, "a position minus a count is not one");
static_assert(!addable<stream_id, std::int64_t>, "ids have no arithmetic");

static_assert(stream_position{4} + 3 == stream_position{7}, "usable in constant expressions");

TEST(stream_position, zero_is_the_start_before_the_first_message) {
  EXPECT_EQ(stream_position().value(), 0u);
  EXPECT_EQ(stream_position::start(), stream_position{0});
  EXPECT_TRUE(stream_position::start().is_start());
  EXPECT_FALSE(stream_position{1}.is_start());
  // The first message is at position 1: start().next().
  EXPECT_EQ(stream_position::start().next(), stream_position{1});
}

TEST(stream_position, next_is_the_position_of_the_following_message) {
  EXPECT_EQ(stream_position{41}.next(), stream_position{42});
  EXPECT_EQ(stream_position{41}.next(), stream_position{41} + 1);
}

TEST(stream_position, a_position_plus_a_count_is_the_position_that_many_messages_later) {
  stream_position after{10};
  EXPECT_EQ(after + 0, after);
  EXPECT_EQ(after + 5, stream_position{15});
  after += 2;
  EXPECT_EQ(after, stream_position{12});
}

TEST(stream_position, the_distance_counts_the_messages_in_the_half_open_range) {
  stream_position after{3};
  stream_position upto{8};
  EXPECT_EQ(upto - after, 5u) << "(3, 8] holds positions 4..8";
  EXPECT_EQ(after - after, 0u);
  EXPECT_EQ(after + (upto - after), upto);
}

TEST(stream_position, orders_like_the_stream) {
  EXPECT_LT(stream_position{1}, stream_position{2});
  EXPECT_LE(stream_position{2}, stream_position{2});
  EXPECT_GT(stream_position{9}, stream_position{2});
  EXPECT_EQ(std::max(stream_position{3}, stream_position{7}), stream_position{7});
}

TEST(stream_position, hashes_and_prints_as_its_bare_value) {
  std::unordered_set<stream_position> seen{stream_position{1}, stream_position{1}};
  EXPECT_EQ(seen.size(), 1u);
  std::ostringstream out;
  out << stream_position{17} << ' ' << stream_id{5};
  EXPECT_EQ(out.str(), "17 5");
}

#ifndef NDEBUG
TEST(stream_position_death, a_negative_distance_is_a_bug) {
  EXPECT_DEATH((void)(stream_position{1} - stream_position{2}), "");
}

TEST(stream_position_death, moving_past_the_largest_position_is_a_bug) {
  stream_position last{std::numeric_limits<std::uint64_t>::max()};
  EXPECT_DEATH((void)last.next(), "");
  EXPECT_DEATH((void)(stream_position{1} + std::numeric_limits<std::uint64_t>::max()), "");
}
#endif

}  // namespace
}  // namespace ordo
