// Black-box tests of the session service against a real SQLite file: a mutation's state, its
// events in the session's stream and its change-feed entries commit together or not at all, and
// malformed or misdirected requests are refused with an error that says what to fix.
#include "sessions/session_service.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <boost/json.hpp>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

namespace ordo::sessions {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

// Makes the writer fail at one named point while armed.
// Thread safety: on_point() runs on the writer thread; fail_at() and clear() on the test thread.
// The reaper's own batches may also pass "commit" while a commit fault is armed; they fail
// harmlessly, and the test's job fails either way.
class fault_plan {
 public:
  status on_point(std::string_view point) {
    std::lock_guard lock(mu_);
    if (!armed_ || point != point_) return ok_v;
    ++hits_;
    return failure_;
  }

  void fail_at(std::string point, failure f) {
    std::lock_guard lock(mu_);
    armed_ = true;
    point_ = std::move(point);
    failure_ = std::move(f);
    hits_ = 0;
  }

  void clear() {
    std::lock_guard lock(mu_);
    armed_ = false;
  }

  int hits() const {
    std::lock_guard lock(mu_);
    return hits_;
  }

 private:
  mutable std::mutex mu_;
  bool armed_ = false;  // guarded by mu_
  std::string point_;   // guarded by mu_
  failure failure_;     // guarded by mu_
  int hits_ = 0;        // guarded by mu_
};

constexpr std::string_view k_checks_written_point = "pr.observation.checks_written";
constexpr std::string_view k_pr_url = "https://github.com/acme/widgets/pull/7";

failure injected_storage_full() {
  return make_failure(failure_kind::insufficient_storage, "storage_full", "injected: disk full");
}

// One PR observation: its facts, two checks on the head commit and one review comment.
json::value pr_observation() {
  return json::parse(R"({
    "pr": {"url": "https://github.com/acme/widgets/pull/7", "number": 7,
           "title": "Make widgets faster", "state": "open",
           "review_decision": "review_required", "mergeability": "mergeable",
           "ci_state": "pending", "head_commit": "abc123"},
    "checks": [
      {"name": "build", "commit": "abc123", "status": "in_progress"},
      {"name": "test", "commit": "abc123", "status": "queued"}
    ],
    "comments": [
      {"id": "c-1", "author": "alice", "body": "Please add a benchmark", "path": "src/w.cpp",
       "line": 12}
    ]
  })");
}

class session_service_test : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::critical);
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("ordo-session-service-test-" + std::to_string(rd()));
    fs::create_directories(dir_);

    stream_engine_options o;
    o.database.path = db_path();
    o.fault_injector = [this](std::string_view point, std::string_view) -> status {
      return faults_.on_point(point);
    };
    auto e = stream_engine::open(std::move(o));
    ASSERT_TRUE(e) << e.error().message;
    engine_ = std::move(*e);
    service_ = std::make_unique<session_service>(*engine_, session_service_options{});
    service_->start();
  }

  void TearDown() override {
    if (service_) service_->stop();
    service_.reset();
    if (engine_) engine_->stop();
    engine_.reset();
    fs::remove_all(dir_);
  }

  std::string db_path() const { return (dir_ / "ordo.db").string(); }

  // Calls the service and blocks until its reply arrives.
  template <class Call>
  result<reply> await(Call call) {
    auto p = std::make_shared<std::promise<result<reply>>>();
    auto f = p->get_future();
    call([p](result<reply> r) { p->set_value(std::move(r)); });
    return f.get();
  }

  // A project and a session in it, created through the service; returns the session's id.
  std::string make_session() {
    auto project = await([&](reply_callback done) {
      service_->create_project(json::parse(R"({"id": "widgets", "name": "Widgets"})"), {},
                               std::move(done));
    });
    EXPECT_TRUE(project) << project.error().message;
    auto session = await([&](reply_callback done) {
      service_->create_session("widgets", json::object(), std::move(done));
    });
    EXPECT_TRUE(session) << session.error().message;
    if (!session) return "";
    return json::value_to<std::string>(session->body.at("id"));
  }

  result<reply> observe(const std::string& session_id, json::value body) {
    return await([&](reply_callback done) {
      service_->observe_pr(session_id, std::nullopt, std::move(body), std::move(done));
    });
  }

  result<reply> list_prs(const std::string& session_id) {
    return await([&](reply_callback done) { service_->list_prs(session_id, std::move(done)); });
  }

  result<reply> append_row(const std::string& session_id, json::value body) {
    return await([&](reply_callback done) {
      service_->append_row(session_id, std::nullopt, std::nullopt, std::move(body),
                           std::move(done));
    });
  }

  // The session's revision as GET /v1/sessions/{id} reports it.
  std::int64_t revision_of(const std::string& session_id) {
    auto r =
        await([&](reply_callback done) { service_->get_session(session_id, std::move(done)); });
    EXPECT_TRUE(r) << r.error().message;
    if (!r) return -1;
    EXPECT_EQ(r->revision, r->body.at("revision").as_int64());
    return r->body.at("revision").as_int64();
  }

  // The published tail of a managed stream (what readers and subscribers can see).
  std::uint64_t tail_of(std::string_view path) {
    auto record = engine_->find(path);
    EXPECT_NE(record, nullptr) << "no stream at " << path;
    return record ? record->state().tail.value() : 0;
  }
  std::uint64_t session_events_tail(const std::string& session_id) {
    return tail_of(session_service::events_stream_path(session_id));
  }
  std::uint64_t change_feed_tail() {
    return tail_of(std::string(session_service::k_changes_stream_path));
  }

  // The `type` of each event in the session's stream after position `after`, read through the
  // engine's read path.
  std::vector<std::string> event_types_after(const std::string& session_id, std::uint64_t after) {
    auto record = engine_->find(session_service::events_stream_path(session_id));
    if (!record) return {"<missing stream>"};
    std::vector<std::string> types;
    stream_position position{after};
    while (position < record->state().tail) {
      auto p = std::make_shared<std::promise<read_result>>();
      auto f = p->get_future();
      engine_->read(record, position, [p](read_result r) { p->set_value(std::move(r)); });
      read_result r = f.get();
      if (!r.chunk) return {"<read error: " + r.error.message + ">"};
      if (r.chunk->messages.empty()) break;
      for (const auto& m : r.chunk->messages) {
        types.push_back(json::value_to<std::string>(json::parse(*m).at("type")));
      }
      position = r.chunk->upto();
    }
    return types;
  }

  // Counts rows in the database file directly, bypassing the engine and the service.
  std::int64_t count_rows(const std::string& table) {
    sqlite3* db = nullptr;
    std::int64_t n = -1;
    if (sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
      sqlite3_stmt* stmt = nullptr;
      std::string sql = "SELECT COUNT(*) FROM " + table;
      if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK &&
          sqlite3_step(stmt) == SQLITE_ROW) {
        n = sqlite3_column_int64(stmt, 0);
      }
      sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    return n;
  }

  // Runs `sql` on the database file directly, with the schema's CHECK constraints ignored: how a
  // file edited outside ordo may come to hold a text no enumerated column allows.
  void write_behind_ordos_back(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open_v2(db_path().c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    std::string all = "PRAGMA ignore_check_constraints = ON; " + sql + ";";
    char* error = nullptr;
    int rc = sqlite3_exec(db, all.c_str(), nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(db);
    ASSERT_EQ(rc, SQLITE_OK) << message;
  }

  // Everything an observation could leave behind is absent.
  void expect_no_pr_state(const std::string& session_id) {
    auto prs = list_prs(session_id);
    ASSERT_TRUE(prs) << prs.error().message;
    EXPECT_TRUE(prs->body.at("prs").as_array().empty()) << json::serialize(prs->body);
    EXPECT_EQ(count_rows("prs"), 0);
    EXPECT_EQ(count_rows("pr_checks"), 0);
    EXPECT_EQ(count_rows("pr_comments"), 0);
  }

  // The observation from pr_observation() is stored exactly once.
  void expect_observation_stored_once(const std::string& session_id) {
    auto prs = list_prs(session_id);
    ASSERT_TRUE(prs) << prs.error().message;
    const auto& list = prs->body.at("prs").as_array();
    ASSERT_EQ(list.size(), 1u) << json::serialize(prs->body);
    const auto& pr = list[0].as_object();
    EXPECT_EQ(pr.at("url").as_string(), k_pr_url);
    EXPECT_EQ(pr.at("state").as_string(), "open");
    EXPECT_EQ(pr.at("checks").as_array().size(), 2u);
    ASSERT_EQ(pr.at("comments").as_array().size(), 1u);
    EXPECT_EQ(pr.at("comments").as_array()[0].at("id").as_string(), "c-1");
    EXPECT_EQ(count_rows("prs"), 1);
    EXPECT_EQ(count_rows("pr_checks"), 2);
    EXPECT_EQ(count_rows("pr_comments"), 1);
  }

  fs::path dir_;
  fault_plan faults_;
  std::unique_ptr<stream_engine> engine_;
  std::unique_ptr<session_service> service_;
};

const std::vector<std::string> k_observation_events{"pr.created", "check.created", "check.created",
                                                    "comment.created"};

// ---- atomicity of PR observations ------------------------------------------------------------

TEST_F(session_service_test,
       a_failure_in_the_middle_of_a_pr_observation_leaves_nothing_visible_and_no_event) {
  std::string id = make_session();
  ASSERT_FALSE(id.empty());
  std::int64_t revision = revision_of(id);
  std::uint64_t events_tail = session_events_tail(id);
  std::uint64_t feed_tail = change_feed_tail();

  // The checks are written when the fault strikes; the comments are not yet.
  faults_.fail_at(std::string(k_checks_written_point), injected_storage_full());
  auto failed = observe(id, pr_observation());
  ASSERT_FALSE(failed);
  EXPECT_EQ(faults_.hits(), 1);
  EXPECT_EQ(failed.error().kind, failure_kind::insufficient_storage);
  EXPECT_EQ(failed.error().code, "storage_full");

  expect_no_pr_state(id);
  EXPECT_EQ(revision_of(id), revision);
  EXPECT_EQ(session_events_tail(id), events_tail);
  EXPECT_EQ(change_feed_tail(), feed_tail);
  EXPECT_TRUE(event_types_after(id, events_tail).empty());

  faults_.clear();
  auto stored = observe(id, pr_observation());
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(stored->kind, reply_kind::created);
  EXPECT_EQ(stored->revision, revision + 1);

  expect_observation_stored_once(id);
  EXPECT_EQ(revision_of(id), revision + 1);
  EXPECT_EQ(event_types_after(id, events_tail), k_observation_events);
  EXPECT_EQ(session_events_tail(id), events_tail + k_observation_events.size());
  EXPECT_EQ(change_feed_tail(), feed_tail + k_observation_events.size());
}

TEST_F(session_service_test,
       a_pr_observation_whose_commit_fails_leaves_nothing_and_can_be_retried) {
  std::string id = make_session();
  ASSERT_FALSE(id.empty());
  std::int64_t revision = revision_of(id);
  std::uint64_t events_tail = session_events_tail(id);
  std::uint64_t feed_tail = change_feed_tail();

  // Everything of the observation ran; only the commit fails (disk full, a definite outcome).
  faults_.fail_at("commit", injected_storage_full());
  auto failed = observe(id, pr_observation());
  faults_.clear();
  ASSERT_FALSE(failed);
  EXPECT_GE(faults_.hits(), 1);
  EXPECT_EQ(failed.error().kind, failure_kind::insufficient_storage);
  EXPECT_TRUE(engine_->writable());

  expect_no_pr_state(id);
  EXPECT_EQ(revision_of(id), revision);
  EXPECT_EQ(session_events_tail(id), events_tail);
  EXPECT_EQ(change_feed_tail(), feed_tail);

  auto stored = observe(id, pr_observation());
  ASSERT_TRUE(stored) << stored.error().message;
  EXPECT_EQ(stored->kind, reply_kind::created);

  expect_observation_stored_once(id);
  EXPECT_EQ(revision_of(id), revision + 1);
  EXPECT_EQ(event_types_after(id, events_tail), k_observation_events);
  EXPECT_EQ(change_feed_tail(), feed_tail + k_observation_events.size());
}

// ---- atomicity of session mutations ----------------------------------------------------------

// Found by the sanitized server (make test's *_asan suites): ordo serve stops the service, then
// stops and destroys the engine, and the service's destructor stopped it again, clearing the
// engine's on_adopted hook in freed memory at every graceful shutdown.
TEST(session_service_lifetime, a_stopped_service_outlives_its_engine) {
  spdlog::set_level(spdlog::level::critical);
  fs::path dir = fs::temp_directory_path() /
                 ("ordo-session-service-lifetime-" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  {
    stream_engine_options o;
    o.database.path = (dir / "ordo.db").string();
    auto engine = stream_engine::open(std::move(o));
    ASSERT_TRUE(engine) << engine.error().message;
    auto service = std::make_unique<session_service>(**engine, session_service_options{});
    service->start();
    service->stop();
    (*engine)->stop();
    engine->reset();
    service.reset();  // under AddressSanitizer, a use after free before the fix
  }
  fs::remove_all(dir);
}

TEST_F(session_service_test, a_session_mutation_and_its_events_commit_together) {
  std::string id = make_session();
  ASSERT_FALSE(id.empty());
  std::int64_t revision = revision_of(id);
  std::uint64_t events_tail = session_events_tail(id);
  std::uint64_t feed_tail = change_feed_tail();
  json::value row = json::parse(R"({"kind": "user", "body": {"text": "hello"}})");

  faults_.fail_at("commit", injected_storage_full());
  auto failed = append_row(id, row);
  faults_.clear();
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.error().kind, failure_kind::insufficient_storage);

  EXPECT_EQ(count_rows("rows"), 0);
  EXPECT_EQ(revision_of(id), revision);
  EXPECT_EQ(session_events_tail(id), events_tail);
  EXPECT_EQ(change_feed_tail(), feed_tail);

  // Committed, the row, its event and the new revision appear together.
  auto appended = append_row(id, row);
  ASSERT_TRUE(appended) << appended.error().message;
  EXPECT_EQ(appended->revision, revision + 1);
  EXPECT_EQ(count_rows("rows"), 1);
  EXPECT_EQ(revision_of(id), revision + 1);
  EXPECT_EQ(event_types_after(id, events_tail), std::vector<std::string>{"row.appended"});
  EXPECT_EQ(change_feed_tail(), feed_tail + 1);
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(session_service_test,
       an_observation_with_an_unknown_enum_value_is_refused_naming_the_field) {
  std::string id = make_session();
  ASSERT_FALSE(id.empty());
  std::int64_t revision = revision_of(id);
  json::value body = pr_observation();
  body.at("pr").as_object()["state"] = "draft";

  auto refused = observe(id, std::move(body));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, failure_kind::invalid);
  EXPECT_EQ(refused.error().code, "invalid_enum");
  const std::string& message = refused.error().message;
  EXPECT_NE(message.find("pr.state"), std::string::npos) << message;
  EXPECT_NE(message.find("draft"), std::string::npos) << message;
  EXPECT_NE(message.find("open, merged, closed"), std::string::npos) << message;

  expect_no_pr_state(id);
  EXPECT_EQ(revision_of(id), revision);
}

TEST_F(session_service_test, a_check_with_an_unknown_status_is_refused_listing_the_statuses) {
  std::string id = make_session();
  ASSERT_FALSE(id.empty());
  json::value body = pr_observation();
  body.at("checks").as_array()[1].as_object()["status"] = "done";

  auto refused = observe(id, std::move(body));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, failure_kind::invalid);
  EXPECT_EQ(refused.error().code, "invalid_enum");
  const std::string& message = refused.error().message;
  EXPECT_NE(message.find("checks[].status"), std::string::npos) << message;
  EXPECT_NE(message.find("queued, in_progress, success, failure, cancelled, skipped, neutral, "
                         "timed_out"),
            std::string::npos)
      << message;
  expect_no_pr_state(id);
}

// Regression: a session state the lifecycle does not know, read from the database, was taken
// out of an empty std::optional by every transition and end (undefined behaviour: an index out
// of the transition table). It is now a damaged database, refused before anything changes.
TEST_F(session_service_test,
       an_unknown_stored_state_is_a_damaged_database_not_undefined_behaviour) {
  std::string id = make_session();
  ASSERT_FALSE(id.empty());
  write_behind_ordos_back("UPDATE sessions SET state = 'dreaming' WHERE id = '" + id + "'");
  auto expect_corrupt = [](const result<reply>& r, const char* call) {
    ASSERT_FALSE(r) << call;
    EXPECT_EQ(r.error().kind, failure_kind::internal) << call;
    EXPECT_EQ(r.error().code, "storage_corrupt") << call;
    EXPECT_NE(r.error().message.find("sessions.state holds 'dreaming'"), std::string::npos)
        << call << ": " << r.error().message;
  };
  expect_corrupt(await([&](reply_callback done) {
                   service_->transition(id, std::nullopt, json::parse(R"({"to": "starting"})"),
                                        std::move(done));
                 }),
                 "transition");
  expect_corrupt(await([&](reply_callback done) {
                   service_->end(id, std::nullopt, json::parse(R"({"reason": "killed"})"),
                                 std::move(done));
                 }),
                 "end");
  expect_corrupt(await([&](reply_callback done) { service_->get_session(id, std::move(done)); }),
                 "get");
  EXPECT_EQ(count_rows("sessions WHERE state = 'dreaming'"), 1) << "nothing was written";
}

TEST_F(session_service_test, observing_a_pr_of_a_missing_session_is_not_found) {
  auto refused = observe("widgets-404", pr_observation());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().kind, failure_kind::not_found);
  EXPECT_EQ(refused.error().code, "session_not_found");
  EXPECT_NE(refused.error().message.find("widgets-404"), std::string::npos);
  EXPECT_EQ(count_rows("prs"), 0);
}

}  // namespace
}  // namespace ordo::sessions
