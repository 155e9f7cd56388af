// Tests of the catch-up admission: the bound, first come first served, hand-over of slots,
// withdrawal racing with admission, and many threads at once.
#include "streams/catch_up_admission.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace ordo {
namespace {

TEST(catch_up_admission, admits_at_once_up_to_the_bound) {
  catch_up_admission gate(2);
  EXPECT_FALSE(gate.acquire([] {}).has_value());
  EXPECT_FALSE(gate.acquire([] {}).has_value());
  EXPECT_EQ(gate.active(), 2u);
  EXPECT_EQ(gate.waiting(), 0u);
}

TEST(catch_up_admission, readers_beyond_the_bound_wait_and_are_admitted_in_arrival_order) {
  catch_up_admission gate(1);
  ASSERT_FALSE(gate.acquire([] {}).has_value());
  std::vector<int> admitted;
  auto first = gate.acquire([&] { admitted.push_back(1); });
  auto second = gate.acquire([&] { admitted.push_back(2); });
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(gate.waiting(), 2u);
  gate.release();
  EXPECT_EQ(admitted, std::vector<int>({1}));
  EXPECT_EQ(gate.active(), 1u);  // handed over, never free
  gate.release();
  EXPECT_EQ(admitted, std::vector<int>({1, 2}));
  gate.release();
  EXPECT_EQ(gate.active(), 0u);
  EXPECT_EQ(gate.waiting(), 0u);
}

TEST(catch_up_admission, a_released_slot_is_reused_by_the_next_acquire_when_nobody_waits) {
  catch_up_admission gate(1);
  ASSERT_FALSE(gate.acquire([] {}).has_value());
  gate.release();
  EXPECT_FALSE(gate.acquire([] {}).has_value());
}

TEST(catch_up_admission, a_withdrawn_waiter_is_never_admitted) {
  catch_up_admission gate(1);
  ASSERT_FALSE(gate.acquire([] {}).has_value());
  bool called = false;
  auto t = gate.acquire([&] { called = true; });
  ASSERT_TRUE(t.has_value());
  EXPECT_TRUE(gate.cancel(*t));
  gate.release();
  EXPECT_FALSE(called);
  EXPECT_EQ(gate.active(), 0u);
}

TEST(catch_up_admission, cancel_after_admission_reports_that_the_caller_owns_a_slot) {
  catch_up_admission gate(1);
  ASSERT_FALSE(gate.acquire([] {}).has_value());
  auto t = gate.acquire([] {});
  ASSERT_TRUE(t.has_value());
  gate.release();  // admits t
  EXPECT_FALSE(gate.cancel(*t));
  EXPECT_EQ(gate.active(), 1u);
  gate.release();
  EXPECT_EQ(gate.active(), 0u);
}

// Error path: a waiter that withdraws while others wait leaves the line intact.
TEST(catch_up_admission, withdrawing_from_the_middle_keeps_the_order_of_the_rest) {
  catch_up_admission gate(1);
  ASSERT_FALSE(gate.acquire([] {}).has_value());
  std::vector<int> admitted;
  auto a = gate.acquire([&] { admitted.push_back(1); });
  auto b = gate.acquire([&] { admitted.push_back(2); });
  auto c = gate.acquire([&] { admitted.push_back(3); });
  EXPECT_TRUE(gate.cancel(*b));
  EXPECT_FALSE(gate.cancel(*b));  // already withdrawn: a second cancel finds nothing
  gate.release();
  gate.release();
  EXPECT_EQ(admitted, std::vector<int>({1, 3}));
  (void)a;
  (void)c;
}

TEST(catch_up_admission, many_threads_never_exceed_the_bound_and_all_get_through) {
  constexpr int k_threads = 8;
  constexpr int k_rounds = 2000;
  catch_up_admission gate(3);
  std::atomic<int> inside{0};
  std::atomic<int> most{0};
  std::atomic<int> done{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < k_threads; ++i) {
    threads.emplace_back([&] {
      for (int r = 0; r < k_rounds; ++r) {
        std::atomic<bool> admitted{false};
        if (auto t = gate.acquire([&] { admitted = true; })) {
          while (!admitted)
            std::this_thread::yield();
        }
        int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --inside;
        gate.release();
        ++done;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(done.load(), k_threads * k_rounds);
  EXPECT_LE(most.load(), 3);
  EXPECT_EQ(gate.active(), 0u);
  EXPECT_EQ(gate.waiting(), 0u);
}

}  // namespace
}  // namespace ordo
