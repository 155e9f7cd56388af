// The fixture the stream engine's tests share: an engine on a real SQLite file in a temporary
// directory, with a fault injector the tests arm (gate_ holds the writer at its next batch,
// fault_ fails a named point, set_flush_fault() the syncer's flush), and helpers that drive
// the engine through its public API. The tests are split like the engine: one file per
// responsibility (stream_engine_test.cpp, group_commit_writer_test.cpp, janitor_test.cpp,
// stream_operations_test.cpp, database_custody_test.cpp).
#pragma once

#include "streams/stream_engine.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

namespace ordo::engine_test {

// Every stored message: moved into the stream table, or still in the append log.
inline const std::string k_all_messages =
    "(SELECT stream_id, seq, data FROM messages UNION ALL "
    "SELECT stream_id, seq, data FROM recent_messages)";

namespace fs = std::filesystem;

inline std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Once armed, holds the next thread that calls hold() until released: the writer at the start
// of its next batch (so that jobs submitted meanwhile queue up and are committed together), or
// the syncer in its next flush.
class one_shot_gate {
 public:
  status hold() {
    if (!armed_.exchange(false)) return ok_v;
    entered_.set_value();
    released_.wait();
    return ok_v;
  }
  void arm() { armed_ = true; }
  void wait_until_held() { entered_future_.wait(); }
  void release() { release_.set_value(); }

 private:
  std::atomic<bool> armed_{false};
  std::promise<void> entered_;
  std::shared_future<void> entered_future_ = entered_.get_future().share();
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
};

class stream_engine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::critical);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("ordo-engine-test-" + std::to_string(rd()));
    fs::create_directories(dir_);
    open();
  }
  void TearDown() override {
    engine_.reset();
    fs::remove_all(dir_);
  }

  void open(std::function<void(stream_engine_options&)> adjust = nullptr) {
    engine_.reset();
    stream_engine_options o;
    o.database.path = (dir_ / "ordo.db").string();
    if (adjust) adjust(o);
    o.maintenance_interval = std::chrono::milliseconds(50);
    o.fault_injector = [this](std::string_view point, std::string_view path) -> status {
      if (point == "flush") {
        // On the syncer thread, at any time (maintenance commits too): its own hook.
        std::function<status()> hook;
        {
          std::lock_guard lock(flush_mu_);
          hook = flush_fault_;
        }
        return hook ? hook() : ok_v;
      }
      if (point == "batch.begin") (void)gate_.hold();
      if (fault_) return fault_(point, path);
      return ok_v;
    };
    auto e = stream_engine::open(o);
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(*e);
  }

  create_result create(create_request r) {
    if (r.now_ms == 0) r.now_ms = wall_ms();
    std::promise<create_result> p;
    engine_->create(std::move(r), [&](create_result x) { p.set_value(std::move(x)); });
    return p.get_future().get();
  }

  create_result create(const std::string& path, const std::string& content_type = "text/plain") {
    create_request r;
    r.path = path;
    r.content_type = content_type;
    return create(std::move(r));
  }

  // A create of `path` as a fork of `source`, from `offset` (none: from the source's tail).
  static create_request fork_request(const std::string& path, const std::string& source,
                                     std::optional<stream_offset> offset = std::nullopt) {
    create_request r;
    r.path = path;
    r.fork_source_path = source;
    r.fork_offset = offset;
    return r;
  }

  // The offset of `position` in the stream at `path`, as the engine hands it out.
  stream_offset offset_at(const std::string& path, stream_position position) {
    return stream_offset{engine_->find(path)->config().offset_prefix, position};
  }

  std::future<append_result> append_async(append_request r) {
    if (r.now_ms == 0) r.now_ms = wall_ms();
    auto p = std::make_shared<std::promise<append_result>>();
    auto f = p->get_future();
    engine_->append(std::move(r), [p](append_result x) { p->set_value(std::move(x)); });
    return f;
  }

  append_request data_request(const std::string& path, const std::string& data,
                              const std::string& media_type = "text/plain") {
    append_request r;
    r.path = path;
    r.media_type = media_type;
    r.data = data;
    return r;
  }

  append_result append(const std::string& path, const std::string& data) {
    return append_async(data_request(path, data)).get();
  }

  append_result append_as(const std::string& path, const std::string& data,
                          const std::string& producer, std::uint64_t epoch, std::uint64_t seq) {
    auto r = data_request(path, data);
    r.producer = producer_claim{producer, epoch, seq};
    return append_async(std::move(r)).get();
  }

  append_result close(const std::string& path) {
    append_request r;
    r.path = path;
    r.close = true;
    return append_async(std::move(r)).get();
  }

  delete_result remove(const std::string& path) {
    std::promise<delete_result> p;
    engine_->remove(path, [&](delete_result x) { p.set_value(std::move(x)); });
    return p.get_future().get();
  }

  // Everything readable at `path`, through the engine's read path (cache or reader pool).
  std::string read_all(const std::string& path) { return read_from(path, 0); }

  // The messages after `position`, following chunks to the tail.
  std::string read_from(const std::string& path, std::uint64_t after) {
    auto record = engine_->find(path);
    if (!record) return "<missing>";
    std::string out;
    stream_position position{after};
    while (position < record->state().tail) {
      std::promise<read_result> p;
      engine_->read(record, position, [&](read_result r) { p.set_value(std::move(r)); });
      read_result r = p.get_future().get();
      if (!r.chunk) return "<error: " + r.error.message + ">";
      out += encode_body(record->config().payload, r.chunk->messages);
      if (r.chunk->messages.empty()) break;
      position = r.chunk->upto();
    }
    return out;
  }

  // Counts rows in the database file directly, bypassing the engine.
  std::int64_t count_rows(const std::string& sql) {
    sqlite3* db = nullptr;
    sqlite3_open_v2((dir_ / "ordo.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
    sqlite3_stmt* stmt = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
    std::int64_t n = -1;
    if (sqlite3_step(stmt) == SQLITE_ROW) n = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return n;
  }

  template <class Predicate>
  bool eventually(Predicate p) {
    for (int i = 0; i < 200; ++i) {
      if (p()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return p();
  }

  void set_flush_fault(std::function<status()> hook) {
    std::lock_guard lock(flush_mu_);
    flush_fault_ = std::move(hook);
  }

  fs::path dir_;
  one_shot_gate gate_;
  std::mutex flush_mu_;
  std::function<status()> flush_fault_;  // flush_mu_
  std::function<status(std::string_view, std::string_view)> fault_;
  std::unique_ptr<stream_engine> engine_;
};

}  // namespace ordo::engine_test
