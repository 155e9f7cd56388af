// The syncer on its own, on a real file: what a wait promises, and what a failed flush does, in
// both places a flush can run (wal_flush::writer and wal_flush::thread).
#include "storage/sqlite/wal_syncer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

namespace ordo::sqlite {
namespace {

namespace fs = std::filesystem;

class wal_syncer_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("ordo-syncer-test-" + std::to_string(rd()));
    fs::create_directories(dir_);
    wal_ = (dir_ / "ordo.db-wal").string();
    std::ofstream(wal_) << "frames";
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string wal_;
};

// What holds wherever the flush runs.
class wal_syncer_modes_test : public wal_syncer_test,
                              public ::testing::WithParamInterface<wal_flush> {};

INSTANTIATE_TEST_SUITE_P(both, wal_syncer_modes_test,
                         ::testing::Values(wal_flush::writer, wal_flush::thread),
                         [](const auto& info) {
                           return info.param == wal_flush::writer ? "writer" : "thread";
                         });

TEST_P(wal_syncer_modes_test, a_commit_is_durable_once_a_flush_after_it_finished) {
  std::atomic<int> flushes{0};
  wal_syncer syncer(GetParam(), [&]() -> status {
    ++flushes;
    return ok_v;
  });
  syncer.attach(wal_);
  commit_number n = syncer.begin_commit();
  syncer.request(n);
  EXPECT_TRUE(syncer.wait(n));
  EXPECT_GE(flushes, 1);
  EXPECT_TRUE(syncer.wait_for_begun());
}

TEST_F(wal_syncer_test, with_its_own_thread_commits_requested_during_a_flush_share_the_next_one) {
  std::promise<void> entered;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> flushes{0};
  wal_syncer syncer(wal_flush::thread, [&]() -> status {
    if (flushes++ == 0) {
      entered.set_value();
      released.wait();
    }
    return ok_v;
  });
  syncer.attach(wal_);
  commit_number first = syncer.begin_commit();
  syncer.request(first);
  entered.get_future().wait();
  commit_number second = syncer.begin_commit();
  syncer.request(second);
  commit_number third = syncer.begin_commit();
  syncer.request(third);
  release.set_value();
  EXPECT_TRUE(syncer.wait(third));
  EXPECT_TRUE(syncer.wait(first));
  EXPECT_EQ(flushes, 2);  // one for the first, one for the two that queued behind it
}

TEST_F(wal_syncer_test,
       with_its_own_thread_a_reader_waits_for_a_commit_that_began_before_it_asked) {
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  wal_syncer syncer(wal_flush::thread, [&]() -> status {
    released.wait();
    return ok_v;
  });
  syncer.attach(wal_);
  commit_number n = syncer.begin_commit();  // committing: not yet requested
  auto reader = std::async(std::launch::async, [&] { return bool(syncer.wait_for_begun()); });
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  syncer.request(n);
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  release.set_value();
  EXPECT_TRUE(reader.get());
}

TEST_P(wal_syncer_modes_test, a_failed_flush_fails_its_commits_and_every_later_one) {
  std::atomic<bool> fail{false};
  wal_syncer syncer(GetParam(), [&]() -> status {
    if (fail) return make_failure(failure_kind::unavailable, "storage_io_error", "injected");
    return ok_v;
  });
  syncer.attach(wal_);
  commit_number kept = syncer.begin_commit();
  syncer.request(kept);
  ASSERT_TRUE(syncer.wait(kept));
  fail = true;
  commit_number lost = syncer.begin_commit();
  syncer.request(lost);
  auto s = syncer.wait(lost);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, "storage_io_error");
  fail = false;
  commit_number later = syncer.begin_commit();
  syncer.request(later);
  EXPECT_FALSE(syncer.wait(later));
  EXPECT_TRUE(syncer.wait(kept));  // what was flushed before stays flushed
  // A new database file starts over.
  syncer.detach();
  syncer.attach(wal_);
  commit_number fresh = syncer.begin_commit();
  syncer.request(fresh);
  EXPECT_TRUE(syncer.wait(fresh));
}

TEST_P(wal_syncer_modes_test, a_missing_write_ahead_log_is_a_flush_failure) {
  wal_syncer syncer(GetParam());
  syncer.attach((dir_ / "absent.db-wal").string());
  commit_number n = syncer.begin_commit();
  syncer.request(n);
  auto s = syncer.wait(n);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("absent.db-wal"), std::string::npos);
}

TEST_P(wal_syncer_modes_test, while_detached_commits_count_as_durable_when_they_return) {
  std::atomic<int> flushes{0};
  wal_syncer syncer(GetParam(), [&]() -> status {
    ++flushes;
    return ok_v;
  });
  commit_number n = syncer.begin_commit();
  syncer.request(n);
  EXPECT_TRUE(syncer.wait(n));
  EXPECT_TRUE(syncer.wait_for_begun());
  EXPECT_EQ(flushes, 0);
  EXPECT_FALSE(syncer.attached());
}

TEST_F(wal_syncer_test, on_the_writer_a_request_flushes_on_the_calling_thread_before_it_returns) {
  std::atomic<int> flushes{0};
  std::thread::id flushed_on;
  wal_syncer syncer(wal_flush::writer, [&]() -> status {
    ++flushes;
    flushed_on = std::this_thread::get_id();
    return ok_v;
  });
  syncer.attach(wal_);
  commit_number n = syncer.begin_commit();
  EXPECT_FALSE(syncer.settled(n));
  syncer.request(n);
  EXPECT_TRUE(syncer.settled(n));
  EXPECT_EQ(flushes, 1);
  EXPECT_EQ(flushed_on, std::this_thread::get_id());
  // A request for what is flushed already flushes nothing more.
  syncer.request(n);
  EXPECT_EQ(flushes, 1);
}

TEST_F(wal_syncer_test, on_the_writer_a_reader_waiting_for_a_commit_is_woken_by_its_flush) {
  wal_syncer syncer(wal_flush::writer);
  syncer.attach(wal_);
  commit_number n = syncer.begin_commit();  // committing: not yet requested
  auto reader = std::async(std::launch::async, [&] { return bool(syncer.wait_for_begun()); });
  EXPECT_EQ(reader.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  syncer.request(n);
  EXPECT_TRUE(reader.get());
}

}  // namespace
}  // namespace ordo::sqlite
