#include "base/duration.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <utility>

namespace ordo {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

milliseconds parsed(std::string_view text) {
  auto r = parse_duration(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? r.value() : milliseconds(-1);
}

TEST(duration, each_suffix_is_its_unit) {
  const std::pair<std::string_view, milliseconds> cases[] = {
      {"30s", seconds(30)}, {"500ms", milliseconds(500)}, {"2m", minutes(2)}, {"1h", hours(1)}};
  for (const auto& [text, expected] : cases)
    EXPECT_EQ(parsed(text), expected) << text;
}

TEST(duration, bare_number_is_seconds) {
  EXPECT_EQ(parsed("30"), seconds(30));
}

TEST(duration, zero_is_accepted_with_and_without_unit) {
  EXPECT_EQ(parsed("0"), milliseconds(0));
  EXPECT_EQ(parsed("0ms"), milliseconds(0));
  EXPECT_EQ(parsed("0h"), milliseconds(0));
}

TEST(duration, leading_zeros_do_not_change_the_value) {
  EXPECT_EQ(parsed("007s"), seconds(7));
}

TEST(duration, largest_representable_millisecond_count_is_accepted) {
  const auto max = milliseconds::max();
  EXPECT_EQ(parsed(std::to_string(max.count()) + "ms"), max);
}

TEST(duration, largest_whole_hour_count_is_accepted) {
  EXPECT_EQ(parsed("2562047788015h"), hours(2562047788015));
}

TEST(duration, format_uses_the_largest_exact_unit) {
  EXPECT_EQ(format_duration(seconds(30)), "30s");
  EXPECT_EQ(format_duration(milliseconds(500)), "500ms");
  EXPECT_EQ(format_duration(minutes(2)), "2m");
  EXPECT_EQ(format_duration(hours(1)), "1h");
  EXPECT_EQ(format_duration(seconds(90)), "90s");
  EXPECT_EQ(format_duration(milliseconds(1500)), "1500ms");
  EXPECT_EQ(format_duration(minutes(90)), "90m");
}

TEST(duration, format_of_zero_is_0s) {
  EXPECT_EQ(format_duration(milliseconds(0)), "0s");
}

TEST(duration, format_then_parse_round_trips) {
  for (const milliseconds d :
       {milliseconds(0), milliseconds(1), milliseconds(999), milliseconds(1000),
        milliseconds(61000), milliseconds(3600000), milliseconds(86400000), milliseconds::max()}) {
    EXPECT_EQ(parsed(format_duration(d)), d) << d.count();
  }
}

// --- Error paths -------------------------------------------------------------------------------

void expect_invalid(std::string_view text) {
  auto r = parse_duration(text);
  ASSERT_FALSE(r.ok()) << "accepted '" << text << "'";
  EXPECT_EQ(r.error().kind, failure_kind::invalid);
  EXPECT_EQ(r.error().code, "invalid_duration");
  // Built by appending: GCC 12 at -O2 gives a false -Wrestrict for "'" + std::string(...).
  std::string quoted = "'";
  quoted += text;
  quoted += '\'';
  EXPECT_NE(r.error().message.find(quoted), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("ms, s, m, h or d"), std::string::npos) << r.error().message;
}

TEST(duration, empty_text_is_rejected) {
  expect_invalid("");
}

TEST(duration, unit_without_number_is_rejected) {
  expect_invalid("s");
  expect_invalid("ms");
}

TEST(duration, signs_are_rejected) {
  expect_invalid("-1s");
  expect_invalid("+1s");
}

TEST(duration, spaces_are_rejected) {
  expect_invalid(" 30s");
  expect_invalid("30s ");
  expect_invalid("30 s");
}

TEST(duration, fractions_are_rejected) {
  expect_invalid("1.5s");
  expect_invalid("0.5");
}

TEST(duration, unknown_or_miscased_units_are_rejected) {
  expect_invalid("30D");
  expect_invalid("30sec");
  expect_invalid("30S");
  expect_invalid("30us");
  expect_invalid("1h30m");
}

TEST(duration, values_that_overflow_milliseconds_are_rejected) {
  expect_invalid("9223372036854775808ms");
  expect_invalid("9223372036854776s");
  expect_invalid("2562047788016h");
  expect_invalid("99999999999999999999999999");
}

}  // namespace
}  // namespace ordo

namespace ordo {
namespace {

TEST(duration, days_are_a_unit) {
  auto d = parse_duration("7d");
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, std::chrono::hours(24 * 7));
  EXPECT_EQ(format_duration(std::chrono::hours(48)), "2d");
}

}  // namespace
}  // namespace ordo
