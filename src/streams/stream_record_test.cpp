#include "streams/stream_record.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ordo {
namespace {

std::shared_ptr<stream_record> make_stream(std::size_t cache_limit_bytes = 1 << 20) {
  stream_config config;
  config.path = "/test";
  config.payload = payload_mode::json;
  config.sse = sse_mode::json;
  return std::make_shared<stream_record>(config, published_state{}, 0, cache_limit_bytes);
}

message_ptr msg(stream_position position) {
  return std::make_shared<const std::string>("{\"i\":" + std::to_string(position.value()) + "}");
}

// Publishes one batch of `count` messages after the current tail.
void append(stream_record& record, std::size_t count) {
  stream_position after = record.state().tail;
  std::vector<message_ptr> messages;
  for (std::size_t i = 1; i <= count; ++i)
    messages.push_back(msg(after + i));
  record.publish_append(after, std::move(messages), false);
}

// Records the order in which subscribers are told of a change.
struct recording_subscriber : live_subscriber {
  recording_subscriber(int id, std::vector<int>& calls) : id(id), calls(calls) {}
  void on_change() override { calls.push_back(id); }
  int id;
  std::vector<int>& calls;
};

TEST(stream_record, read_cached_serves_any_offset_the_cache_holds_across_many_batches) {
  auto record = make_stream();
  // Batches of 1, 2, 3, ... messages: positions 1..210 in 20 batches.
  for (std::size_t n = 1; n <= 20; ++n)
    append(*record, n);
  ASSERT_EQ(record->state().tail, stream_position{210});
  for (stream_position after; after < stream_position{210}; after = after.next()) {
    auto chunk = record->read_cached(after, stream_position{210}, 1 << 20);
    ASSERT_TRUE(chunk) << after;
    ASSERT_EQ(chunk->after, after);
    ASSERT_EQ(chunk->upto(), stream_position{210}) << after;
    for (std::size_t i = 0; i < chunk->messages.size(); ++i)
      ASSERT_EQ(*chunk->messages[i], *msg(after + i + 1)) << after;
  }
  // A chunk that is exactly one batch shares its encodings; bounded reads stop early.
  EXPECT_TRUE(record->read_cached(stream_position{0}, stream_position{210}, 1 << 20)->shared ==
              nullptr);
  EXPECT_TRUE(record->read_cached(stream_position{190}, stream_position{210}, 1 << 20)->shared !=
              nullptr);  // the 20-message one
  EXPECT_EQ(record->read_cached(stream_position{5}, stream_position{8}, 1 << 20)->upto(),
            stream_position{8});
  EXPECT_EQ(record->read_cached(stream_position{5}, stream_position{210}, 1)->upto(),
            stream_position{6});
  EXPECT_FALSE(record->read_cached(stream_position{210}, stream_position{210}, 1 << 20));
}

TEST(stream_record, read_cached_refuses_offsets_the_cache_dropped) {
  auto record = make_stream(64);  // room for a few messages only
  for (int i = 0; i < 50; ++i)
    append(*record, 1);
  EXPECT_FALSE(record->read_cached(stream_position{0}, stream_position{50}, 1 << 20));
  auto chunk = record->read_cached(stream_position{49}, stream_position{50}, 1 << 20);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(*chunk->messages.front(), *msg(stream_position{50}));
}

TEST(stream_record, caches_says_what_read_cached_would_serve) {
  auto record = make_stream(64);
  EXPECT_FALSE(record->caches(stream_position{0}));  // nothing cached yet
  for (int i = 0; i < 50; ++i)
    append(*record, 1);
  for (stream_position after; after <= stream_position{50}; after = after.next()) {
    EXPECT_EQ(record->caches(after),
              record->read_cached(after, stream_position{50}, 1 << 20).has_value())
        << after;
  }
  record->drop_cache();
  EXPECT_FALSE(record->caches(stream_position{49}));
}

TEST(stream_record, subscribers_are_told_of_every_change_in_subscription_order_until_unsubscribed) {
  auto record = make_stream();
  std::vector<int> calls;
  std::vector<std::shared_ptr<recording_subscriber>> readers;
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 5; ++i) {
    readers.push_back(std::make_shared<recording_subscriber>(i, calls));
    ids.push_back(record->subscribe(readers.back()));
  }
  append(*record, 1);
  record->wake_waiters();
  append(*record, 1);
  record->wake_waiters();
  EXPECT_EQ(calls, (std::vector<int>{0, 1, 2, 3, 4, 0, 1, 2, 3, 4}));

  calls.clear();
  record->unsubscribe(ids[1]);
  record->unsubscribe(ids[3]);
  record->unsubscribe(ids[3]);  // twice is harmless
  readers[4].reset();           // ended without unsubscribing: skipped
  record->wake_waiters();
  EXPECT_EQ(calls, (std::vector<int>{0, 2}));
}

TEST(stream_record, one_shot_waiters_are_called_once) {
  auto record = make_stream();
  int woken = 0;
  record->add_waiter([&] { ++woken; });
  std::uint64_t removed = record->add_waiter([&] { woken += 100; });
  record->remove_waiter(removed);
  record->wake_waiters();
  record->wake_waiters();
  EXPECT_EQ(woken, 1);
  EXPECT_EQ(record->waiter_count(), 0u);
}

// Holds the first round inside a subscriber until released.
struct blocking_subscriber : live_subscriber {
  void on_change() override {
    std::unique_lock lock(mu);
    ++calls;
    entered = true;
    cv.notify_all();
    cv.wait(lock, [&] { return released; });
  }
  std::mutex mu;
  std::condition_variable cv;
  bool entered = false;
  bool released = false;
  int calls = 0;
};

TEST(stream_record, a_round_asked_for_while_one_runs_is_left_to_it_one_round_at_a_time) {
  auto record = make_stream();
  auto reader = std::make_shared<blocking_subscriber>();
  record->subscribe(reader);
  bool first_asks_again = false;
  std::thread first([&] { first_asks_again = record->wake_round(); });
  {
    std::unique_lock lock(reader->mu);
    reader->cv.wait(lock, [&] { return reader->entered; });
  }
  // A change while the first round runs: this round does not run beside it.
  EXPECT_FALSE(record->wake_round());
  {
    std::lock_guard lock(reader->mu);
    reader->released = true;
  }
  reader->cv.notify_all();
  first.join();
  EXPECT_TRUE(first_asks_again);  // its caller runs the next round
  EXPECT_EQ(reader->calls, 1);
  EXPECT_FALSE(record->wake_round());  // that next round: nothing asked meanwhile
  EXPECT_EQ(reader->calls, 2);
}

TEST(stream_record, wake_waiters_runs_the_rounds_asked_for_until_none_is) {
  auto record = make_stream();
  auto reader = std::make_shared<blocking_subscriber>();
  record->subscribe(reader);
  std::thread first([&] { record->wake_waiters(); });
  {
    std::unique_lock lock(reader->mu);
    reader->cv.wait(lock, [&] { return reader->entered; });
  }
  record->wake_waiters();  // returns at once: the running one takes it over
  {
    std::lock_guard lock(reader->mu);
    reader->released = true;
  }
  reader->cv.notify_all();
  first.join();
  EXPECT_EQ(reader->calls, 2);
}

}  // namespace
}  // namespace ordo
