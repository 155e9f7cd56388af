#include "http/token_limits.hpp"

#include <gtest/gtest.h>

namespace ordo::http {
namespace {

using namespace std::chrono_literals;
const auto t0 = std::chrono::steady_clock::time_point{} + 1h;

TEST(token_limits, a_token_past_its_rate_gets_429_with_retry_after_and_refills_with_time) {
  token_limits limits({10, 10, 0});
  std::vector<token_limits::in_flight> held;
  for (int i = 0; i < 10; ++i) {
    auto a = limits.admit("a", t0);
    ASSERT_TRUE(a) << i;
    held.push_back(std::move(*a));
  }
  auto refused = limits.admit("a", t0);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, failure_kind::too_many_requests);
  EXPECT_EQ(refused.error().details.at(0).first, "retry_after");
  EXPECT_EQ(limits.rate_refusals.value(), 1u);
  // Another token is not held back by this one.
  EXPECT_TRUE(limits.admit("b", t0));
  // A tenth of a second later one more request fits.
  EXPECT_TRUE(limits.admit("a", t0 + 100ms));
  EXPECT_FALSE(limits.admit("a", t0 + 100ms));
}

TEST(token_limits, requests_in_flight_are_capped_and_released_when_they_end) {
  token_limits limits({0, 0, 2});
  auto a = limits.admit("a", t0);
  auto b = limits.admit("a", t0);
  ASSERT_TRUE(a && b);
  auto c = limits.admit("a", t0);
  ASSERT_FALSE(c);
  EXPECT_EQ(limits.in_flight_refusals.value(), 1u);
  { auto released = std::move(*a); }
  EXPECT_TRUE(limits.admit("a", t0));
}

TEST(token_limits, idle_subjects_are_forgotten_so_the_table_stays_bounded) {
  token_limits limits({1000, 1000, 0});
  for (std::size_t i = 0; i < k_max_tracked_subjects + 10; ++i)
    ASSERT_TRUE(limits.admit("s" + std::to_string(i), t0 + std::chrono::seconds(i / 1000)));
  EXPECT_FALSE(token_limits({0, 0, 0}).enabled());
}

}  // namespace
}  // namespace ordo::http
