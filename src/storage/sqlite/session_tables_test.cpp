// session_tables against a real SQLite file: projects, sessions, executions, commands, rows and
// pull requests round-trip through insert, read and update; the session filters (project, state,
// derived client state) and paging hold; the counts by state and status leave out what has none;
// stream_tail and stream_incarnation read the session's event stream. Error paths: the schema's
// CHECK and UNIQUE constraints refuse bad rows, and a read-only connection refuses writes.
#include "storage/sqlite/session_tables.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {
namespace {

class session_tables_test : public testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir() + "session_tables_test.db";
    remove_files();
    auto db = connection::open(path_, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    db_.emplace(std::move(*db));
    ASSERT_TRUE(migrate(*db_));
    cache_.emplace(*db_);
    tables_.emplace(*cache_);
    // The event stream every session of these tests points at.
    auto streams = stream_tables::prepare(*db_);
    ASSERT_TRUE(streams) << streams.error().message;
    streams_.emplace(std::move(*streams));
    ASSERT_TRUE(streams_->begin_immediate());
    stream_row events;
    events.path = "sessions/events";
    events.content_type = "application/json";
    events.incarnation = 42;
    auto id = streams_->insert_stream(events);
    ASSERT_TRUE(id);
    events_stream_ = *id;
    ASSERT_TRUE(streams_->commit());
    ASSERT_TRUE(tables_->insert_project(project("p1")));
  }
  void TearDown() override {
    streams_.reset();
    tables_.reset();
    cache_.reset();
    db_.reset();
    remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
      std::remove((path_ + suffix).c_str());
  }

  static project_row project(const std::string& id) {
    project_row p;
    p.id = id;
    p.name = "Project " + id;
    p.created_at_ms = 1000;
    p.updated_at_ms = 1000;
    return p;
  }
  session_row session(const std::string& id, const std::string& project_id, std::int64_t number,
                      const std::string& state = "active") {
    session_row s;
    s.id = id;
    s.project_id = project_id;
    s.number = number;
    s.state = state;
    if (state == "ended") s.end_reason = "completed";
    s.created_at_ms = 2000 + number;
    s.updated_at_ms = 2000 + number;
    s.events_stream_id = events_stream_;
    return s;
  }
  static command_row command(const std::string& session_id, std::int64_t seq,
                             const std::string& status = "accepted") {
    return command_row{session_id,
                       seq,
                       "req-" + std::to_string(seq),
                       R"({"type":"prompt"})",
                       status,
                       std::nullopt,
                       3000 + seq,
                       3000 + seq};
  }
  static transcript_row row(const std::string& session_id, std::int64_t seq,
                            const std::string& kind = "assistant",
                            const std::string& status = "complete") {
    transcript_row r;
    r.session_id = session_id;
    r.seq = seq;
    r.row_id = "row-" + std::to_string(seq);
    r.kind = kind;
    r.status = status;
    r.body = R"({"text":"hi"})";
    r.created_at_ms = 4000 + seq;
    r.updated_at_ms = 4000 + seq;
    return r;
  }
  static pr_row pr(const std::string& url, const std::string& session_id, std::int64_t created) {
    pr_row p;
    p.url = url;
    p.session_id = session_id;
    p.state = "open";
    p.review_decision = "review_required";
    p.mergeability = "unknown";
    p.ci_state = "pending";
    p.created_at_ms = created;
    p.updated_at_ms = created;
    return p;
  }
  std::vector<std::string> ids(const session_filter& f) {
    auto found = tables_->sessions(f);
    EXPECT_TRUE(found) << found.error().message;
    std::vector<std::string> out;
    if (found) {
      for (const auto& s : *found)
        out.push_back(s.id);
    }
    return out;
  }
  std::vector<std::int64_t> row_seqs(const row_page_query& q) {
    auto found = tables_->rows("s1", q);
    EXPECT_TRUE(found) << found.error().message;
    std::vector<std::int64_t> out;
    if (found) {
      for (const auto& r : *found)
        out.push_back(r.seq);
    }
    return out;
  }

  std::string path_;
  std::int64_t events_stream_ = 0;
  std::optional<connection> db_;
  std::optional<statement_cache> cache_;
  std::optional<session_tables> tables_;
  std::optional<stream_tables> streams_;
};

using counts = std::map<std::string, std::int64_t>;
counts as_map(const std::vector<std::pair<std::string, std::int64_t>>& v) {
  return counts(v.begin(), v.end());
}

// ---- projects --------------------------------------------------------------------------------

TEST_F(session_tables_test, a_project_round_trips_through_insert_update_and_read) {
  project_row p = project("p2");
  p.repo_path = "/src/p2";
  p.origin_url = "https://example.com/p2.git";
  ASSERT_TRUE(tables_->insert_project(p));
  auto read = tables_->project("p2");
  ASSERT_TRUE(read);
  ASSERT_TRUE(*read);
  EXPECT_EQ((*read)->name, "Project p2");
  EXPECT_EQ((*read)->repo_path, "/src/p2");
  EXPECT_EQ((*read)->origin_url, "https://example.com/p2.git");
  EXPECT_FALSE((*read)->description);
  EXPECT_FALSE((*read)->archived_at_ms);
  EXPECT_EQ((*read)->revision, 1);
  EXPECT_EQ((*read)->next_session_number, 1);

  p.name = "Renamed";
  p.repo_path.reset();
  p.description = "described";
  p.updated_at_ms = 5000;
  p.revision = 2;
  p.next_session_number = 4;
  ASSERT_TRUE(tables_->update_project(p));
  read = tables_->project("p2");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->name, "Renamed");
  EXPECT_FALSE((*read)->repo_path);
  EXPECT_EQ((*read)->description, "described");
  EXPECT_EQ((*read)->created_at_ms, 1000) << "created_at_ms is not an updatable column";
  EXPECT_EQ((*read)->updated_at_ms, 5000);
  EXPECT_EQ((*read)->revision, 2);
  EXPECT_EQ((*read)->next_session_number, 4);

  auto missing = tables_->project("nope");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_F(session_tables_test, projects_are_listed_by_id_and_archived_ones_only_on_request) {
  ASSERT_TRUE(tables_->insert_project(project("p3")));
  project_row archived = project("p0");
  archived.archived_at_ms = 1500;
  ASSERT_TRUE(tables_->insert_project(archived));
  auto live = tables_->projects(false);
  ASSERT_TRUE(live);
  ASSERT_EQ(live->size(), 2u);
  EXPECT_EQ((*live)[0].id, "p1");
  EXPECT_EQ((*live)[1].id, "p3");
  auto all = tables_->projects(true);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].id, "p0");
  EXPECT_EQ((*all)[0].archived_at_ms, 1500);
}

// ---- sessions --------------------------------------------------------------------------------

TEST_F(session_tables_test, a_session_round_trips_every_column_through_insert_and_update) {
  session_row s = session("s1", "p1", 1);
  s.agent_kind = "claude";
  s.model = "m";
  s.title = "first";
  s.branch = "feature";
  s.workspace_path = "/tmp/ws";
  s.tags = R"(["a","b"])";
  s.last_heartbeat_ms = 2500;
  ASSERT_TRUE(tables_->insert_session(s));
  auto read = tables_->session("s1");
  ASSERT_TRUE(read);
  ASSERT_TRUE(*read);
  const session_row& r = **read;
  EXPECT_GT(r.seq, 0) << "seq is assigned by the database";
  EXPECT_EQ(r.project_id, "p1");
  EXPECT_EQ(r.number, 1);
  EXPECT_EQ(r.state, "active");
  EXPECT_FALSE(r.end_reason);
  EXPECT_EQ(r.agent_kind, "claude");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.title, "first");
  EXPECT_EQ(r.branch, "feature");
  EXPECT_EQ(r.workspace_path, "/tmp/ws");
  EXPECT_EQ(r.tags, R"(["a","b"])");
  EXPECT_EQ(r.last_heartbeat_ms, 2500);
  EXPECT_EQ(r.events_stream_id, events_stream_);
  EXPECT_FALSE(r.active_generation);
  EXPECT_FALSE(r.active_started_at_ms);
  EXPECT_FALSE(r.awaiting_approval);

  session_row u = r;
  u.state = "ended";
  u.end_reason = "killed";
  u.revision = 5;
  u.title.reset();
  u.tags = "[]";
  u.updated_at_ms = 9000;
  u.ended_at_ms = 9000;
  u.next_row_seq = 11;
  u.next_command_seq = 12;
  u.next_generation = 13;
  ASSERT_TRUE(tables_->update_session(u));
  read = tables_->session("s1");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->seq, r.seq);
  EXPECT_EQ((*read)->state, "ended");
  EXPECT_EQ((*read)->end_reason, "killed");
  EXPECT_EQ((*read)->revision, 5);
  EXPECT_FALSE((*read)->title);
  EXPECT_EQ((*read)->tags, "[]");
  EXPECT_EQ((*read)->ended_at_ms, 9000);
  EXPECT_EQ((*read)->next_row_seq, 11);
  EXPECT_EQ((*read)->next_command_seq, 12);
  EXPECT_EQ((*read)->next_generation, 13);

  auto missing = tables_->session("nope");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_F(session_tables_test, sessions_filter_by_project_and_state_newest_first_with_paging) {
  ASSERT_TRUE(tables_->insert_project(project("p2")));
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p2", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s3", "p1", 2, "ended")));
  ASSERT_TRUE(tables_->insert_session(session("s4", "p1", 3, "suspended")));

  EXPECT_EQ(ids({}), (std::vector<std::string>{"s4", "s3", "s2", "s1"}));
  session_filter by_project;
  by_project.project_id = "p1";
  EXPECT_EQ(ids(by_project), (std::vector<std::string>{"s4", "s3", "s1"}));
  session_filter by_state;
  by_state.state = "ended";
  EXPECT_EQ(ids(by_state), (std::vector<std::string>{"s3"}));
  session_filter both = by_project;
  both.state = "active";
  EXPECT_EQ(ids(both), (std::vector<std::string>{"s1"}));

  // Paging: a page of two, then the sessions created before the last one seen.
  session_filter page;
  page.limit = 2;
  auto first = tables_->sessions(page);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ(first->back().id, "s3");
  page.before_seq = first->back().seq;
  EXPECT_EQ(ids(page), (std::vector<std::string>{"s2", "s1"}));

  auto live = tables_->live_sessions();
  ASSERT_TRUE(live);
  std::vector<std::string> live_ids;
  for (const auto& s : *live)
    live_ids.push_back(s.id);
  EXPECT_EQ(live_ids, (std::vector<std::string>{"s1", "s2", "s4"})) << "oldest first, no ended";
}

TEST_F(session_tables_test, the_client_state_filter_derives_running_requires_action_and_idle) {
  ASSERT_TRUE(tables_->insert_session(session("idle", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("running", "p1", 2)));
  ASSERT_TRUE(tables_->insert_session(session("asking", "p1", 3)));
  ASSERT_TRUE(tables_->insert_session(session("ended", "p1", 4, "ended")));
  ASSERT_TRUE(tables_->insert_execution({"running", 1, 7000, std::nullopt, std::nullopt}));
  ASSERT_TRUE(tables_->insert_execution({"asking", 1, 7100, std::nullopt, std::nullopt}));
  ASSERT_TRUE(tables_->insert_row(row("asking", 1, "approval_request", "pending")));

  auto filter = [](const char* state) {
    session_filter f;
    f.client_state = state;
    return f;
  };
  EXPECT_EQ(ids(filter("running")), (std::vector<std::string>{"running"}));
  EXPECT_EQ(ids(filter("requires_action")), (std::vector<std::string>{"asking"}))
      << "a pending approval request wins over a running execution";
  EXPECT_EQ(ids(filter("idle")), (std::vector<std::string>{"ended", "idle"}));

  auto running = tables_->session("running");
  ASSERT_TRUE(running && *running);
  EXPECT_EQ((*running)->active_generation, 1);
  EXPECT_EQ((*running)->active_started_at_ms, 7000);
  EXPECT_FALSE((*running)->awaiting_approval);
  auto asking = tables_->session("asking");
  ASSERT_TRUE(asking && *asking);
  EXPECT_TRUE((*asking)->awaiting_approval);

  // Answering the approval makes the session running again.
  transcript_row answered = row("asking", 1, "approval_request", "approved");
  ASSERT_TRUE(tables_->update_row(answered));
  EXPECT_EQ(ids(filter("running")), (std::vector<std::string>{"asking", "running"}));
}

TEST_F(session_tables_test, counts_by_state_and_status_leave_out_what_has_none) {
  auto empty = tables_->sessions_by_state();
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
  ASSERT_TRUE(tables_->insert_session(session("s3", "p1", 3, "ended")));
  ASSERT_TRUE(tables_->insert_command(command("s1", 1)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 2, "done")));
  ASSERT_TRUE(tables_->insert_command(command("s2", 1, "done")));

  auto states = tables_->sessions_by_state();
  ASSERT_TRUE(states);
  EXPECT_EQ(as_map(*states), (counts{{"active", 2}, {"ended", 1}}));
  auto statuses = tables_->commands_by_status();
  ASSERT_TRUE(statuses);
  EXPECT_EQ(as_map(*statuses), (counts{{"accepted", 1}, {"done", 2}}));
}

TEST_F(session_tables_test, stale_heartbeats_fall_back_to_the_creation_time) {
  session_row fresh = session("fresh", "p1", 1);
  fresh.last_heartbeat_ms = 10'000;
  session_row stale = session("stale", "p1", 2);
  stale.last_heartbeat_ms = 5'000;
  session_row never = session("never", "p1", 3);  // created at 2003, no heartbeat
  session_row other_state = session("suspended", "p1", 4, "suspended");
  for (const auto& s : {fresh, stale, never, other_state})
    ASSERT_TRUE(tables_->insert_session(s));
  auto found = tables_->sessions_with_heartbeat_before({"active", "starting"}, 8'000);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, (std::vector<std::string>{"stale", "never"}));
}

// ---- executions ------------------------------------------------------------------------------

TEST_F(session_tables_test, an_execution_is_active_until_finished_and_finishes_once) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_execution({"s1", 1, 100, std::nullopt, std::nullopt}));
  auto active = tables_->active_execution("s1");
  ASSERT_TRUE(active && *active);
  EXPECT_EQ((*active)->generation, 1);
  EXPECT_FALSE((*active)->finished_at_ms);

  ASSERT_TRUE(tables_->finish_execution("s1", 1, 200, "completed"));
  ASSERT_TRUE(tables_->finish_execution("s1", 1, 300, "failed"));  // already finished: no-op
  auto done = tables_->execution("s1", 1);
  ASSERT_TRUE(done && *done);
  EXPECT_EQ((*done)->finished_at_ms, 200);
  EXPECT_EQ((*done)->finish_reason, "completed");
  active = tables_->active_execution("s1");
  ASSERT_TRUE(active);
  EXPECT_FALSE(*active);

  ASSERT_TRUE(tables_->insert_execution({"s1", 2, 400, std::nullopt, std::nullopt}));
  auto all = tables_->executions("s1");
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].generation, 1);
  EXPECT_EQ((*all)[1].generation, 2);
  EXPECT_FALSE((*all)[1].finish_reason);
  auto missing = tables_->execution("s1", 9);
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

// ---- commands --------------------------------------------------------------------------------

TEST_F(session_tables_test, commands_round_trip_and_page_with_the_pending_ones_apart) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  for (std::int64_t seq = 1; seq <= 4; ++seq)
    ASSERT_TRUE(tables_->insert_command(command("s1", seq)));
  auto c = tables_->command("s1", 2);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->request_id, "req-2");
  EXPECT_EQ((*c)->body, R"({"type":"prompt"})");
  EXPECT_EQ((*c)->status, "accepted");
  EXPECT_FALSE((*c)->result);
  auto by_request = tables_->command_by_request("s1", "req-3");
  ASSERT_TRUE(by_request && *by_request);
  EXPECT_EQ((*by_request)->seq, 3);

  ASSERT_TRUE(tables_->update_command_status("s1", 1, "done", R"({"ok":true})", 8000));
  ASSERT_TRUE(tables_->update_command_status("s1", 1, "done", std::nullopt, 8100));
  c = tables_->command("s1", 1);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, "done");
  EXPECT_EQ((*c)->result, R"({"ok":true})") << "a status change without a result keeps it";
  EXPECT_EQ((*c)->updated_at_ms, 8100);
  ASSERT_TRUE(tables_->update_command_status("s1", 3, "delivered", std::nullopt, 8200));

  auto pending = tables_->pending_commands("s1");
  ASSERT_TRUE(pending);
  std::vector<std::int64_t> seqs;
  for (const auto& p : *pending)
    seqs.push_back(p.seq);
  EXPECT_EQ(seqs, (std::vector<std::int64_t>{2, 3, 4}));

  auto page = tables_->commands("s1", 1, 2);
  ASSERT_TRUE(page);
  ASSERT_EQ(page->size(), 2u);
  EXPECT_EQ((*page)[0].seq, 2);
  EXPECT_EQ((*page)[1].seq, 3);
  ASSERT_TRUE(tables_->update_command_status("s1", 2, "failed", std::nullopt, 8300));
  auto pending_page = tables_->commands("s1", 0, 10, true);
  ASSERT_TRUE(pending_page);
  ASSERT_EQ(pending_page->size(), 2u);
  EXPECT_EQ((*pending_page)[0].seq, 3);
  EXPECT_EQ((*pending_page)[1].seq, 4);
}

// ---- rows ------------------------------------------------------------------------------------

TEST_F(session_tables_test, rows_round_trip_by_id_and_by_request) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  transcript_row ask = row("s1", 1, "approval_request", "pending");
  ask.request_id = "approve-1";
  ask.request_body = R"({"tool":"rm"})";
  ASSERT_TRUE(tables_->insert_row(ask));
  auto read = tables_->row_by_request("s1", "approve-1");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->row_id, "row-1");
  EXPECT_EQ((*read)->request_body, R"({"tool":"rm"})");

  ask.status = "denied";
  ask.body = R"({"text":"no"})";
  ask.revision = 2;
  ask.updated_at_ms = 9999;
  ASSERT_TRUE(tables_->update_row(ask));
  read = tables_->row_by_id("s1", "row-1");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->status, "denied");
  EXPECT_EQ((*read)->body, R"({"text":"no"})");
  EXPECT_EQ((*read)->revision, 2);
  EXPECT_EQ((*read)->updated_at_ms, 9999);
  EXPECT_EQ((*read)->created_at_ms, 4001);

  auto missing = tables_->row_by_id("s1", "row-9");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  missing = tables_->row_by_request("s1", "nope");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_F(session_tables_test, rows_page_after_before_and_newest_first) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
  for (std::int64_t seq = 1; seq <= 6; ++seq)
    ASSERT_TRUE(tables_->insert_row(row("s1", seq)));
  ASSERT_TRUE(tables_->insert_row(row("s2", 1)));  // another session's row is never listed

  row_page_query q;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6}));
  q.limit = 2;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{1, 2}));
  q.after = 2;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{3, 4}));
  q.before = 4;
  EXPECT_EQ(row_seqs(q), (std::vector<std::int64_t>{3}));
  row_page_query latest;
  latest.limit = 2;
  latest.newest_first = true;
  EXPECT_EQ(row_seqs(latest), (std::vector<std::int64_t>{6, 5}));
  latest.before = 5;
  EXPECT_EQ(row_seqs(latest), (std::vector<std::int64_t>{4, 3}));
}

// ---- pull requests ---------------------------------------------------------------------------

TEST_F(session_tables_test, a_pull_request_its_checks_and_comments_round_trip) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  const std::string url = "https://example.com/pr/1";
  ASSERT_TRUE(tables_->insert_pr(pr("https://example.com/pr/2", "s1", 200)));
  ASSERT_TRUE(tables_->insert_pr(pr(url, "s1", 100)));
  pr_row p = pr(url, "s1", 100);
  p.number = 1;
  p.title = "Fix";
  p.state = "merged";
  p.review_decision = "approved";
  p.mergeability = "mergeable";
  p.ci_state = "passing";
  p.head_commit = "abc";
  p.revision = 3;
  p.next_check_seq = 3;
  p.updated_at_ms = 500;
  ASSERT_TRUE(tables_->update_pr(p));
  auto read = tables_->pr(url);
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->number, 1);
  EXPECT_EQ((*read)->title, "Fix");
  EXPECT_EQ((*read)->state, "merged");
  EXPECT_EQ((*read)->review_decision, "approved");
  EXPECT_EQ((*read)->mergeability, "mergeable");
  EXPECT_EQ((*read)->ci_state, "passing");
  EXPECT_EQ((*read)->head_commit, "abc");
  EXPECT_EQ((*read)->revision, 3);
  EXPECT_EQ((*read)->next_check_seq, 3);
  EXPECT_EQ((*read)->created_at_ms, 100);
  auto of_session = tables_->prs_of_session("s1");
  ASSERT_TRUE(of_session);
  ASSERT_EQ(of_session->size(), 2u);
  EXPECT_EQ((*of_session)[0].url, url) << "ordered by creation time";

  // Checks: listed in the order first seen, whatever their names.
  check_row zed{url, "zed", "abc", 1, "queued", std::nullopt, std::nullopt, std::nullopt, 1, 1};
  check_row alpha{url, "alpha", "abc", 2, "in_progress", "https://ci/2", 10, std::nullopt, 2, 2};
  ASSERT_TRUE(tables_->insert_check(zed));
  ASSERT_TRUE(tables_->insert_check(alpha));
  zed.status = "success";
  zed.completed_at_ms = 20;
  zed.updated_at_ms = 20;
  ASSERT_TRUE(tables_->update_check(zed));
  auto c = tables_->check(url, "zed", "abc");
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, "success");
  EXPECT_EQ((*c)->completed_at_ms, 20);
  EXPECT_FALSE((*c)->url);
  auto other_commit = tables_->check(url, "zed", "def");
  ASSERT_TRUE(other_commit);
  EXPECT_FALSE(*other_commit);
  auto checks = tables_->checks_of_pr(url);
  ASSERT_TRUE(checks);
  ASSERT_EQ(checks->size(), 2u);
  EXPECT_EQ((*checks)[0].name, "zed");
  EXPECT_EQ((*checks)[1].name, "alpha");
  EXPECT_EQ((*checks)[1].url, "https://ci/2");

  // Comments: insert, update, delete.
  comment_row later{url, "c2", "bob", "second", std::nullopt, std::nullopt, false, 60, 60};
  comment_row earlier{url, "c1", std::nullopt, "first", "src/a.cpp", 12, false, 50, 50};
  ASSERT_TRUE(tables_->insert_comment(later));
  ASSERT_TRUE(tables_->insert_comment(earlier));
  earlier.resolved = true;
  earlier.body = "first, edited";
  earlier.updated_at_ms = 70;
  ASSERT_TRUE(tables_->update_comment(earlier));
  auto comments = tables_->comments_of_pr(url);
  ASSERT_TRUE(comments);
  ASSERT_EQ(comments->size(), 2u);
  EXPECT_EQ((*comments)[0].comment_id, "c1");
  EXPECT_TRUE((*comments)[0].resolved);
  EXPECT_EQ((*comments)[0].body, "first, edited");
  EXPECT_EQ((*comments)[0].path, "src/a.cpp");
  EXPECT_EQ((*comments)[0].line, 12);
  EXPECT_FALSE((*comments)[0].author);
  EXPECT_EQ((*comments)[1].author, "bob");
  ASSERT_TRUE(tables_->delete_comment(url, "c2"));
  comments = tables_->comments_of_pr(url);
  ASSERT_TRUE(comments);
  ASSERT_EQ(comments->size(), 1u);
  EXPECT_EQ((*comments)[0].comment_id, "c1");

  auto missing = tables_->pr("https://example.com/none");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

// ---- the event stream ------------------------------------------------------------------------

TEST_F(session_tables_test, the_event_streams_tail_and_incarnation_are_read_through_the_tables) {
  auto tail = tables_->stream_tail(events_stream_);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, 0);
  ASSERT_TRUE(streams_->begin_immediate());
  ASSERT_TRUE(streams_->insert_message(events_stream_, 1, "one"));  // the append log
  ASSERT_TRUE(streams_->insert_message(events_stream_, 2, "two"));
  ASSERT_TRUE(streams_->commit());
  tail = tables_->stream_tail(events_stream_);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, 2);
  ASSERT_TRUE(streams_->begin_immediate());
  ASSERT_TRUE(streams_->merge_log());
  ASSERT_TRUE(streams_->insert_message(events_stream_, 3, std::string(4096, 'x')));
  ASSERT_TRUE(streams_->commit());
  tail = tables_->stream_tail(events_stream_);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, 3);

  auto incarnation = tables_->stream_incarnation(events_stream_);
  ASSERT_TRUE(incarnation);
  EXPECT_EQ(*incarnation, 42);
  auto none = tables_->stream_incarnation(999);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0) << "a missing stream has incarnation 0";
  auto by_path = tables_->stream_by_path("sessions/events");
  ASSERT_TRUE(by_path);
  EXPECT_EQ(*by_path, events_stream_);
  by_path = tables_->stream_by_path("sessions/none");
  ASSERT_TRUE(by_path);
  EXPECT_FALSE(*by_path);
}

// ---- error paths -----------------------------------------------------------------------------

TEST_F(session_tables_test, an_ended_session_without_an_end_reason_is_refused) {
  session_row s = session("s1", "p1", 1, "ended");
  s.end_reason.reset();
  EXPECT_FALSE(tables_->insert_session(s));
  session_row live = session("s2", "p1", 2);
  live.end_reason = "completed";
  EXPECT_FALSE(tables_->insert_session(live)) << "only an ended session has an end reason";
  session_row bad_state = session("s3", "p1", 3, "dreaming");
  EXPECT_FALSE(tables_->insert_session(bad_state));
  auto none = tables_->sessions({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_F(session_tables_test, duplicate_ids_numbers_and_projects_are_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  EXPECT_FALSE(tables_->insert_session(session("s1", "p1", 2))) << "id is unique";
  EXPECT_FALSE(tables_->insert_session(session("s2", "p1", 1))) << "(project, number) is unique";
  EXPECT_FALSE(tables_->insert_project(project("p1")));
  // The cached statements stay usable after a failure.
  EXPECT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
}

TEST_F(session_tables_test, a_second_active_execution_of_a_session_is_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_execution({"s1", 1, 100, std::nullopt, std::nullopt}));
  EXPECT_FALSE(tables_->insert_execution({"s1", 2, 200, std::nullopt, std::nullopt}));
  EXPECT_FALSE(tables_->insert_execution({"s1", 1, 300, std::nullopt, std::nullopt}))
      << "(session, generation) is the key";
  EXPECT_FALSE(tables_->finish_execution("s1", 1, 400, "bored")) << "finish_reason is an enum";
  auto active = tables_->active_execution("s1");
  ASSERT_TRUE(active && *active);
  EXPECT_EQ((*active)->generation, 1);
}

TEST_F(session_tables_test, duplicate_requests_and_unknown_statuses_are_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 1)));
  command_row same_request = command("s1", 2);
  same_request.request_id = "req-1";
  EXPECT_FALSE(tables_->insert_command(same_request));
  EXPECT_FALSE(tables_->insert_command(command("s1", 3, "lost")));
  EXPECT_FALSE(tables_->update_command_status("s1", 1, "lost", std::nullopt, 1));
  auto c = tables_->command("s1", 1);
  ASSERT_TRUE(c && *c);
  EXPECT_EQ((*c)->status, "accepted");

  transcript_row r = row("s1", 1);
  r.request_id = "approve-1";
  ASSERT_TRUE(tables_->insert_row(r));
  transcript_row same = row("s1", 2);
  same.request_id = "approve-1";
  EXPECT_FALSE(tables_->insert_row(same)) << "a request id names one row";
  EXPECT_FALSE(tables_->insert_row(row("s1", 3, "poem")));
  EXPECT_FALSE(tables_->insert_row(row("s1", 0))) << "row seq starts at 1";

  pr_row p = pr("https://example.com/pr/1", "s1", 1);
  p.ci_state = "green";
  EXPECT_FALSE(tables_->insert_pr(p));
}

TEST_F(session_tables_test, a_read_only_connection_refuses_writes_but_reads) {
  auto ro = connection::open(path_, open_mode::read_only, std::chrono::seconds(1));
  ASSERT_TRUE(ro) << ro.error().message;
  statement_cache cache(*ro);
  session_tables reader(cache);
  auto p = reader.project("p1");
  ASSERT_TRUE(p) << p.error().message;
  EXPECT_TRUE(*p);
  auto s = reader.insert_project(project("p9"));
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, k_storage_readonly);
}

}  // namespace
}  // namespace ordo::sqlite
