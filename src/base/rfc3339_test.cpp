#include "base/rfc3339.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace ordo {
namespace {

// 2026-11-21T12:34:56.789Z, computed independently: 20778 days after the epoch.
constexpr std::int64_t k_example_ms =
    20778LL * 86400000 + (12 * 3600 + 34 * 60 + 56) * 1000LL + 789;

std::int64_t parsed(std::string_view text) {
  auto r = parse_rfc3339_ms(text);
  EXPECT_TRUE(r.ok()) << text << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : -1;
}

TEST(rfc3339, epoch_is_zero) {
  EXPECT_EQ(parsed("1970-01-01T00:00:00Z"), 0);
}

TEST(rfc3339, utc_timestamp_with_milliseconds_is_parsed) {
  EXPECT_EQ(parsed("2026-11-21T12:34:56.789Z"), k_example_ms);
}

TEST(rfc3339, lowercase_t_and_z_are_accepted) {
  EXPECT_EQ(parsed("2026-11-21t12:34:56.789z"), k_example_ms);
}

TEST(rfc3339, well_known_instants_match_their_unix_time) {
  EXPECT_EQ(parsed("2000-01-01T00:00:00Z"), 946684800000);
  EXPECT_EQ(parsed("2024-10-09T00:00:00Z"), 1728432000000);
  EXPECT_EQ(parsed("2038-01-19T03:14:07Z"), 2147483647000);
  EXPECT_EQ(parsed("1969-12-31T23:59:59.999Z"), -1);
  EXPECT_EQ(parsed("0000-01-01T00:00:00Z"), -62167219200000);
  EXPECT_EQ(parsed("9999-12-31T23:59:59.999Z"), 253402300799999);
}

TEST(rfc3339, positive_offset_is_east_of_utc) {
  EXPECT_EQ(parsed("2026-11-21T14:34:56.789+02:00"), k_example_ms);
  EXPECT_EQ(parsed("2026-11-21T18:04:56.789+05:30"), k_example_ms);
}

TEST(rfc3339, negative_offset_is_west_of_utc) {
  EXPECT_EQ(parsed("2026-11-21T07:34:56.789-05:00"), k_example_ms);
}

TEST(rfc3339, offset_can_cross_a_day_boundary) {
  EXPECT_EQ(parsed("2026-11-22T00:34:56.789+12:00"), k_example_ms);
  EXPECT_EQ(parsed("1970-01-01T00:00:00+23:59"), -(23 * 3600 + 59 * 60) * 1000LL);
}

TEST(rfc3339, zero_offset_in_either_sign_is_utc) {
  EXPECT_EQ(parsed("1970-01-01T00:00:00+00:00"), 0);
  EXPECT_EQ(parsed("1970-01-01T00:00:00-00:00"), 0);
}

TEST(rfc3339, fraction_shorter_than_milliseconds_is_scaled) {
  EXPECT_EQ(parsed("1970-01-01T00:00:00.5Z"), 500);
  EXPECT_EQ(parsed("1970-01-01T00:00:00.05Z"), 50);
}

TEST(rfc3339, fraction_longer_than_milliseconds_is_truncated) {
  EXPECT_EQ(parsed("1970-01-01T00:00:00.123999999Z"), 123);
  EXPECT_EQ(parsed("1970-01-01T00:00:00.9999Z"), 999);
}

TEST(rfc3339, leap_day_is_accepted_in_leap_years) {
  EXPECT_EQ(parsed("2024-02-29T00:00:00Z"), parsed("2024-02-28T00:00:00Z") + 86400000);
  EXPECT_EQ(parsed("2000-02-29T00:00:00Z"), parsed("2000-03-01T00:00:00Z") - 86400000);
}

TEST(rfc3339, leap_second_is_read_as_the_second_before) {
  EXPECT_EQ(parsed("2016-12-31T23:59:60Z"), parsed("2016-12-31T23:59:59Z"));
}

TEST(rfc3339, format_writes_utc_with_three_fraction_digits) {
  EXPECT_EQ(format_rfc3339_ms(k_example_ms), "2026-11-21T12:34:56.789Z");
  EXPECT_EQ(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339_ms(5), "1970-01-01T00:00:00.005Z");
}

TEST(rfc3339, format_before_the_epoch_counts_backwards) {
  EXPECT_EQ(format_rfc3339_ms(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(format_rfc3339_ms(-86400000), "1969-12-31T00:00:00.000Z");
}

TEST(rfc3339, format_then_parse_round_trips) {
  for (const std::int64_t ms :
       {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1}, k_example_ms,
        std::int64_t{951782400000}, std::int64_t{-62167219200000}, std::int64_t{253402300799999}}) {
    EXPECT_EQ(parsed(format_rfc3339_ms(ms)), ms) << ms;
  }
  // Every day across several leap cycles, at an arbitrary time of day.
  for (std::int64_t day = -3 * 366; day < 50 * 366; ++day) {
    const std::int64_t ms = day * 86400000 + 45296789;
    ASSERT_EQ(parsed(format_rfc3339_ms(ms)), ms) << ms;
  }
}

TEST(rfc3339, parse_then_format_round_trips_utc_millisecond_text) {
  for (const char* text : {"2024-02-29T23:59:59.999Z", "1999-12-31T00:00:00.001Z",
                           "2100-03-01T12:00:00.000Z", "0001-01-01T00:00:00.000Z"}) {
    EXPECT_EQ(format_rfc3339_ms(parsed(text)), text);
  }
}

// --- Error paths -------------------------------------------------------------------------------

void expect_invalid(std::string_view text) {
  auto r = parse_rfc3339_ms(text);
  ASSERT_FALSE(r.ok()) << "accepted '" << text << "'";
  EXPECT_EQ(r.error().kind, failure_kind::invalid);
  EXPECT_EQ(r.error().code, "invalid_timestamp");
  EXPECT_NE(r.error().message.find(std::string(text)), std::string::npos) << r.error().message;
}

TEST(rfc3339, empty_and_truncated_text_is_rejected) {
  expect_invalid("");
  expect_invalid("2026-11-21");
  expect_invalid("2026-11-21T12:34");
  expect_invalid("2026-11-21T12:34:56");
}

TEST(rfc3339, missing_offset_is_rejected) {
  expect_invalid("2026-11-21T12:34:56.789");
}

TEST(rfc3339, wrong_separators_are_rejected) {
  expect_invalid("2026-11-21 12:34:56Z");
  expect_invalid("2026/11/21T12:34:56Z");
  expect_invalid("2026-11-21T12.34.56Z");
  expect_invalid("2026-11-21T12:34:56,789Z");
}

TEST(rfc3339, short_or_long_fields_are_rejected) {
  expect_invalid("26-11-21T12:34:56Z");
  expect_invalid("2026-1-21T12:34:56Z");
  expect_invalid("2026-11-21T1:34:56Z");
  expect_invalid("12026-11-21T12:34:56Z");
  expect_invalid("+2026-11-21T12:34:56Z");
}

TEST(rfc3339, out_of_range_date_fields_are_rejected) {
  expect_invalid("2026-00-21T12:34:56Z");
  expect_invalid("2026-13-21T12:34:56Z");
  expect_invalid("2026-11-00T12:34:56Z");
  expect_invalid("2026-11-31T12:34:56Z");
  expect_invalid("2026-04-31T12:34:56Z");
  expect_invalid("2026-01-32T12:34:56Z");
}

TEST(rfc3339, february_29_is_rejected_outside_leap_years) {
  expect_invalid("2026-02-29T00:00:00Z");
  expect_invalid("1900-02-29T00:00:00Z");
  expect_invalid("2024-02-30T00:00:00Z");
}

TEST(rfc3339, out_of_range_time_fields_are_rejected) {
  expect_invalid("2026-11-21T24:00:00Z");
  expect_invalid("2026-11-21T12:60:00Z");
  expect_invalid("2026-11-21T12:34:61Z");
}

TEST(rfc3339, malformed_fractions_are_rejected) {
  expect_invalid("2026-11-21T12:34:56.Z");
  expect_invalid("2026-11-21T12:34:56.1234567890Z");
  expect_invalid("2026-11-21T12:34:56.12a3Z");
}

TEST(rfc3339, malformed_offsets_are_rejected) {
  expect_invalid("2026-11-21T12:34:56+0200");
  expect_invalid("2026-11-21T12:34:56+02");
  expect_invalid("2026-11-21T12:34:56+2:00");
  expect_invalid("2026-11-21T12:34:56+02:00:00");
  expect_invalid("2026-11-21T12:34:56+24:00");
  expect_invalid("2026-11-21T12:34:56+02:60");
  expect_invalid("2026-11-21T12:34:56UTC");
}

TEST(rfc3339, trailing_or_leading_garbage_is_rejected) {
  expect_invalid("2026-11-21T12:34:56ZZ");
  expect_invalid("2026-11-21T12:34:56Z ");
  expect_invalid(" 2026-11-21T12:34:56Z");
  expect_invalid("2026-11-21T12:34:56+02:00x");
}

}  // namespace
}  // namespace ordo
