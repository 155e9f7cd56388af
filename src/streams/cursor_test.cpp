#include "streams/cursor.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/strict_integer.hpp"

namespace ordo {
namespace {

using std::chrono::seconds;
using std::chrono::system_clock;

// 2024-10-09T00:00:00Z.
const system_clock::time_point k_epoch = system_clock::time_point(seconds(1728432000));

system_clock::time_point at_interval(std::uint64_t interval, std::int64_t extra_seconds = 0) {
  return k_epoch + seconds(static_cast<std::int64_t>(interval * k_cursor_interval_seconds)) +
         seconds(extra_seconds);
}

TEST(cursor, interval_zero_starts_at_the_cursor_epoch) {
  EXPECT_EQ(cursor_interval(k_epoch), 0u);
  EXPECT_EQ(cursor_interval(k_epoch + seconds(19)), 0u);
  EXPECT_EQ(cursor_interval(k_epoch + seconds(20)), 1u);
}

TEST(cursor, intervals_are_twenty_seconds_long) {
  EXPECT_EQ(k_cursor_interval_seconds, 20u);
  EXPECT_EQ(cursor_interval(at_interval(1000)), 1000u);
  EXPECT_EQ(cursor_interval(at_interval(1000, 19)), 1000u);
  EXPECT_EQ(cursor_interval(at_interval(1000, 20)), 1001u);
  EXPECT_EQ(cursor_interval(at_interval(1000) - std::chrono::milliseconds(1)), 999u);
}

TEST(cursor, interval_of_a_known_date_matches_hand_computation) {
  // 2026-01-01T00:00:00Z is 1767225600; (1767225600 - 1728432000) / 20 = 1939680.
  EXPECT_EQ(cursor_interval(system_clock::time_point(seconds(1767225600))), 1939680u);
}

TEST(cursor, time_before_the_epoch_is_interval_zero) {
  EXPECT_EQ(cursor_interval(k_epoch - seconds(1)), 0u);
  EXPECT_EQ(cursor_interval(system_clock::time_point{}), 0u);
}

TEST(cursor, without_a_client_cursor_the_reply_is_the_current_interval) {
  EXPECT_EQ(response_cursor(std::nullopt, at_interval(1000, 5), 100), "1000");
}

TEST(cursor, client_cursor_behind_the_current_interval_gets_the_current_interval) {
  EXPECT_EQ(response_cursor("999", at_interval(1000), 100), "1000");
  EXPECT_EQ(response_cursor("0", at_interval(1000), 100), "1000");
}

TEST(cursor, client_cursor_equal_to_the_current_interval_jumps_ahead_by_the_jitter) {
  EXPECT_EQ(response_cursor("1000", at_interval(1000), 100), "1005");
  EXPECT_EQ(response_cursor("1000", at_interval(1000), 3600), "1180");
}

TEST(cursor, client_cursor_ahead_of_the_current_interval_still_advances) {
  EXPECT_EQ(response_cursor("1050", at_interval(1000), 40), "1052");
}

TEST(cursor, jitter_is_rounded_up_to_whole_intervals) {
  EXPECT_EQ(response_cursor("1000", at_interval(1000), 1), "1001");
  EXPECT_EQ(response_cursor("1000", at_interval(1000), 20), "1001");
  EXPECT_EQ(response_cursor("1000", at_interval(1000), 21), "1002");
}

TEST(cursor, zero_jitter_still_advances_by_one_interval) {
  EXPECT_EQ(response_cursor("1000", at_interval(1000), 0), "1001");
}

TEST(cursor, replies_never_go_backwards_for_any_jitter) {
  const auto now = at_interval(5000);
  for (std::uint64_t client = 4990; client <= 5010; ++client) {
    for (std::uint64_t jitter = 0; jitter <= 3600; jitter += 7) {
      const std::string reply = response_cursor(std::to_string(client), now, jitter);
      const std::uint64_t value = std::stoull(reply);
      EXPECT_GE(value, 5000u);
      if (client >= 5000) {
        EXPECT_GT(value, client);
      }
    }
  }
}

TEST(cursor, largest_safe_client_cursor_still_advances) {
  const std::string client = std::to_string(k_max_safe_integer - 1);
  EXPECT_EQ(response_cursor(client, at_interval(1000), 20), std::to_string(k_max_safe_integer));
}

TEST(cursor, random_jitter_stays_within_one_second_and_an_hour) {
  EXPECT_EQ(k_min_cursor_jitter_seconds, 1u);
  EXPECT_EQ(k_max_cursor_jitter_seconds, 3600u);
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t jitter = random_cursor_jitter_seconds();
    ASSERT_GE(jitter, k_min_cursor_jitter_seconds);
    ASSERT_LE(jitter, k_max_cursor_jitter_seconds);
    seen.insert(jitter);
  }
  // 10000 uniform draws from 3600 values leave fewer than ~3% unseen; 2000 is a loose floor.
  EXPECT_GT(seen.size(), 2000u);
}

TEST(cursor, random_jitter_is_usable_from_several_threads) {
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> results(4);
  for (std::size_t t = 0; t < results.size(); ++t) {
    threads.emplace_back([&results, t] { results[t] = random_cursor_jitter_seconds(); });
  }
  for (auto& thread : threads)
    thread.join();
  for (const std::uint64_t jitter : results) {
    EXPECT_GE(jitter, k_min_cursor_jitter_seconds);
    EXPECT_LE(jitter, k_max_cursor_jitter_seconds);
  }
}

// --- Error paths -------------------------------------------------------------------------------

TEST(cursor, malformed_client_cursor_is_treated_as_absent) {
  const auto now = at_interval(1000);
  for (const std::string_view bad :
       {"", "abc", "-1", "+1001", "1001.5", " 1001", "1001 ", "01001", "1e9", "0x10"}) {
    EXPECT_EQ(response_cursor(bad, now, 100), "1000") << bad;
  }
}

TEST(cursor, client_cursor_that_overflows_is_treated_as_absent) {
  const auto now = at_interval(1000);
  EXPECT_EQ(response_cursor("18446744073709551616", now, 100), "1000");
  EXPECT_EQ(response_cursor("18446744073709551615", now, 100), "1000");
  EXPECT_EQ(response_cursor(std::to_string(k_max_safe_integer), now, 100), "1000");
}

TEST(cursor, huge_jitter_does_not_overflow) {
  const auto now = at_interval(1000);
  EXPECT_EQ(response_cursor("1000", now, UINT64_MAX), "1000");
  EXPECT_EQ(response_cursor(std::nullopt, now, UINT64_MAX), "1000");
}

// Found by fuzz/offsets.cpp: before the cursor epoch (interval 0) a client cursor "0" passed the
// bound of max(0, 2^53-1 - jump), and a jump of 2^53 intervals or more was added to it, past the
// largest safe integer.
TEST(cursor, a_jump_past_the_safe_integers_is_never_added_to_cursor_zero) {
  const auto before_epoch = k_epoch - seconds(100);
  const std::uint64_t huge_jitter = (k_max_safe_integer + 1) * k_cursor_interval_seconds;
  EXPECT_EQ(response_cursor("0", before_epoch, huge_jitter), "0");
  EXPECT_EQ(response_cursor("0", before_epoch, UINT64_MAX), "0");
  EXPECT_EQ(response_cursor("0", before_epoch, 20), "1");
}

}  // namespace
}  // namespace ordo
