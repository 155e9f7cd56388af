#include "streams/offset.hpp"

#include <gtest/gtest.h>

namespace ordo {
namespace {

TEST(offset, formats_fixed_width_prefix_and_position) {
  EXPECT_EQ(format_offset({0x1234abcdULL, stream_position{42}}),
            "000000001234abcd_0000000000000042");
  EXPECT_EQ(format_offset({}), k_zero_offset);
  EXPECT_EQ(format_offset({}).size(), k_offset_length);
}

TEST(offset, parse_is_the_inverse_of_format) {
  stream_offset o{0xfedcba9876543210ULL, stream_position{9'999'999'999'999'999ULL}};
  auto parsed = parse_offset_token(format_offset(o));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, o);
}

TEST(offset, byte_order_is_position_order_within_a_prefix) {
  const std::uint64_t prefix = 0x00ff00ff00ff00ffULL;
  std::string previous = format_offset({prefix, stream_position{0}});
  for (std::uint64_t p : {1ULL, 9ULL, 10ULL, 99ULL, 100ULL, 123456789ULL}) {
    std::string next = format_offset({prefix, stream_position{p}});
    EXPECT_LT(previous, next) << p;
    previous = next;
  }
}

TEST(offset, zero_token_and_minus_one_both_mean_start) {
  auto a = parse_offset_param("-1");
  auto b = parse_offset_param(k_zero_offset);
  ASSERT_TRUE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(a->kind, offset_request_kind::start);
  EXPECT_EQ(b->kind, offset_request_kind::start);
}

TEST(offset, now_is_the_tail_sentinel) {
  auto r = parse_offset_param("now");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, offset_request_kind::now);
}

TEST(offset, prefix_is_never_zero_and_differs_per_epoch_and_incarnation) {
  EXPECT_NE(offset_prefix_for(0, 0), 0u);
  EXPECT_NE(offset_prefix_for(1, 7), offset_prefix_for(2, 7));
  EXPECT_NE(offset_prefix_for(1, 7), offset_prefix_for(1, 8));
  EXPECT_EQ(offset_prefix_for(5, 9), offset_prefix_for(5, 9));
}

// ---- error paths -------------------------------------------------------------------------

TEST(offset, rejects_malformed_tokens_with_a_message_naming_the_offset) {
  for (std::string_view bad :
       {"", "0,1", "0 1", "abc", "000000001234ABCD_0000000000000042",
        "000000001234abcd-0000000000000042", "000000001234abcd_00000000000000x2",
        "000000001234abcd_00000000000000420", "-2", "NOW"}) {
    auto r = parse_offset_param(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().kind, failure_kind::invalid);
    EXPECT_EQ(r.error().code, "invalid_offset");
  }
}

}  // namespace
}  // namespace ordo
