#include "base/strict_integer.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace ordo {
namespace {

constexpr std::uint64_t k_u64_max = std::numeric_limits<std::uint64_t>::max();

// Each of `texts` is refused even with the largest maximum.
void expect_rejected(std::initializer_list<std::string> texts) {
  for (const std::string& t : texts)
    EXPECT_EQ(parse_strict_uint(t, k_u64_max), std::nullopt) << "'" << t << "'";
}

TEST(strict_integer, zero_is_accepted) {
  EXPECT_EQ(parse_strict_uint("0", 10), 0u);
}

TEST(strict_integer, plain_decimal_numbers_are_accepted) {
  EXPECT_EQ(parse_strict_uint("1", 10), 1u);
  EXPECT_EQ(parse_strict_uint("3600", k_max_safe_integer), 3600u);
  EXPECT_EQ(parse_strict_uint("1234567890", k_u64_max), 1234567890u);
}

TEST(strict_integer, max_safe_integer_is_two_to_the_53_minus_one) {
  EXPECT_EQ(k_max_safe_integer, (std::uint64_t{1} << 53) - 1);
}

TEST(strict_integer, value_equal_to_the_maximum_is_accepted) {
  EXPECT_EQ(parse_strict_uint("9007199254740991", k_max_safe_integer), k_max_safe_integer);
  EXPECT_EQ(parse_strict_uint("3600", 3600), 3600u);
  EXPECT_EQ(parse_strict_uint("0", 0), 0u);
}

TEST(strict_integer, full_uint64_range_is_reachable) {
  EXPECT_EQ(parse_strict_uint("18446744073709551615", k_u64_max), k_u64_max);
}

// --- Error paths -------------------------------------------------------------------------------

TEST(strict_integer, empty_text_is_rejected) {
  expect_rejected({""});
}

TEST(strict_integer, leading_zeros_are_rejected) {
  expect_rejected({"00", "03600", "01"});
}

TEST(strict_integer, signs_are_rejected) {
  expect_rejected({"+1", "-1", "-0"});
}

TEST(strict_integer, fractions_and_exponents_are_rejected) {
  expect_rejected({"1.5", "1.", "1e3"});
}

TEST(strict_integer, trailing_garbage_is_rejected) {
  expect_rejected({"1abc", "0x10", std::string("1\0", 2)});
}

TEST(strict_integer, whitespace_is_rejected) {
  expect_rejected({" 1", "1 ", "1\t"});
}

TEST(strict_integer, non_ascii_digits_are_rejected) {
  expect_rejected({
      "\xD9\xA1",      // ARABIC-INDIC DIGIT ONE
      "\xEF\xBC\x91",  // FULLWIDTH DIGIT ONE
  });
}

TEST(strict_integer, value_above_the_maximum_is_rejected) {
  EXPECT_EQ(parse_strict_uint("9007199254740992", k_max_safe_integer), std::nullopt);
  EXPECT_EQ(parse_strict_uint("3601", 3600), std::nullopt);
  EXPECT_EQ(parse_strict_uint("1", 0), std::nullopt);
  EXPECT_EQ(parse_strict_uint("10", 9), std::nullopt);
}

TEST(strict_integer, values_that_overflow_uint64_are_rejected) {
  expect_rejected(
      {"18446744073709551616", "18446744073709551620", "99999999999999999999999999999"});
}

}  // namespace
}  // namespace ordo
