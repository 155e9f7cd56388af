// session_tables against a real SQLite file and a PostgreSQL database: projects and sessions
// round-trip through insert, read and update; the session filters (project, state, derived client
// state) and paging hold; the counts by state and status leave out what has none; stream_tail and
// stream_incarnation read the session's event stream. Error paths: the schema's CHECK and UNIQUE
// constraints refuse bad rows, and a read-only connection refuses writes.
#include <map>

#include "storage/sqlite/session_tables_test_fixture.hpp"

namespace ordo::sqlite::tables_test {
namespace {

template <class Key>
std::map<Key, std::int64_t> as_map(const std::vector<std::pair<Key, std::int64_t>>& v) {
  return std::map<Key, std::int64_t>(v.begin(), v.end());
}

// ---- projects --------------------------------------------------------------------------------

TEST_P(session_tables_test, a_project_round_trips_through_insert_update_and_read) {
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
  EXPECT_EQ((*read)->next_session_number, session_number{1});

  p.name = "Renamed";
  p.repo_path.reset();
  p.description = "described";
  p.updated_at_ms = 5000;
  p.revision = 2;
  p.next_session_number = session_number{4};
  ASSERT_TRUE(tables_->update_project(p));
  read = tables_->project("p2");
  ASSERT_TRUE(read && *read);
  EXPECT_EQ((*read)->name, "Renamed");
  EXPECT_FALSE((*read)->repo_path);
  EXPECT_EQ((*read)->description, "described");
  EXPECT_EQ((*read)->created_at_ms, 1000) << "created_at_ms is not an updatable column";
  EXPECT_EQ((*read)->updated_at_ms, 5000);
  EXPECT_EQ((*read)->revision, 2);
  EXPECT_EQ((*read)->next_session_number, session_number{4});

  auto missing = tables_->project("nope");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
}

TEST_P(session_tables_test, projects_are_listed_by_id_and_archived_ones_only_on_request) {
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

TEST_P(session_tables_test, a_session_round_trips_every_column_through_insert_and_update) {
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
  EXPECT_EQ(r.number, session_number{1});
  EXPECT_EQ(r.state, session_state::active);
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
  u.state = session_state::ended;
  u.end_reason = end_reason::killed;
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
  EXPECT_EQ((*read)->state, session_state::ended);
  EXPECT_EQ((*read)->end_reason, end_reason::killed);
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

TEST_P(session_tables_test, sessions_filter_by_project_and_state_newest_first_with_paging) {
  ASSERT_TRUE(tables_->insert_project(project("p2")));
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p2", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s3", "p1", 2, session_state::ended)));
  ASSERT_TRUE(tables_->insert_session(session("s4", "p1", 3, session_state::suspended)));

  EXPECT_EQ(ids({}), (std::vector<std::string>{"s4", "s3", "s2", "s1"}));
  session_filter by_project;
  by_project.project_id = "p1";
  EXPECT_EQ(ids(by_project), (std::vector<std::string>{"s4", "s3", "s1"}));
  session_filter by_state;
  by_state.state = session_state::ended;
  EXPECT_EQ(ids(by_state), (std::vector<std::string>{"s3"}));
  session_filter both = by_project;
  both.state = session_state::active;
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

TEST_P(session_tables_test, the_client_state_filter_derives_running_requires_action_and_idle) {
  ASSERT_TRUE(tables_->insert_session(session("idle", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("running", "p1", 2)));
  ASSERT_TRUE(tables_->insert_session(session("asking", "p1", 3)));
  ASSERT_TRUE(tables_->insert_session(session("ended", "p1", 4, session_state::ended)));
  ASSERT_TRUE(tables_->insert_execution({"running", 1, 7000, std::nullopt, std::nullopt}));
  ASSERT_TRUE(tables_->insert_execution({"asking", 1, 7100, std::nullopt, std::nullopt}));
  ASSERT_TRUE(
      tables_->insert_row(row("asking", 1, row_kind::approval_request, row_status::pending)));

  auto filter = [](client_state state) {
    session_filter f;
    f.client_state = state;
    return f;
  };
  EXPECT_EQ(ids(filter(client_state::running)), (std::vector<std::string>{"running"}));
  EXPECT_EQ(ids(filter(client_state::requires_action)), (std::vector<std::string>{"asking"}))
      << "a pending approval request wins over a running execution";
  EXPECT_EQ(ids(filter(client_state::idle)), (std::vector<std::string>{"ended", "idle"}));

  auto running = tables_->session("running");
  ASSERT_TRUE(running && *running);
  EXPECT_EQ((*running)->active_generation, 1);
  EXPECT_EQ((*running)->active_started_at_ms, 7000);
  EXPECT_FALSE((*running)->awaiting_approval);
  auto asking = tables_->session("asking");
  ASSERT_TRUE(asking && *asking);
  EXPECT_TRUE((*asking)->awaiting_approval);

  // Answering the approval makes the session running again.
  transcript_row answered = row("asking", 1, row_kind::approval_request, row_status::approved);
  ASSERT_TRUE(tables_->update_row(answered));
  EXPECT_EQ(ids(filter(client_state::running)), (std::vector<std::string>{"asking", "running"}));
}

TEST_P(session_tables_test, counts_by_state_and_status_leave_out_what_has_none) {
  auto empty = tables_->sessions_by_state();
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->empty());
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
  ASSERT_TRUE(tables_->insert_session(session("s3", "p1", 3, session_state::ended)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 1)));
  ASSERT_TRUE(tables_->insert_command(command("s1", 2, command_status::done)));
  ASSERT_TRUE(tables_->insert_command(command("s2", 1, command_status::done)));

  auto states = tables_->sessions_by_state();
  ASSERT_TRUE(states);
  EXPECT_EQ(as_map(*states), (std::map<session_state, std::int64_t>{{session_state::active, 2},
                                                                    {session_state::ended, 1}}));
  auto statuses = tables_->commands_by_status();
  ASSERT_TRUE(statuses);
  EXPECT_EQ(as_map(*statuses), (std::map<command_status, std::int64_t>{
                                   {command_status::accepted, 1}, {command_status::done, 2}}));
}

TEST_P(session_tables_test, stale_heartbeats_fall_back_to_the_creation_time) {
  session_row fresh = session("fresh", "p1", 1);
  fresh.last_heartbeat_ms = 10'000;
  session_row stale = session("stale", "p1", 2);
  stale.last_heartbeat_ms = 5'000;
  session_row never = session("never", "p1", 3);  // created at 2003, no heartbeat
  session_row other_state = session("suspended", "p1", 4, session_state::suspended);
  for (const auto& s : {fresh, stale, never, other_state})
    ASSERT_TRUE(tables_->insert_session(s));
  auto found = tables_->sessions_with_heartbeat_before(
      {session_state::active, session_state::starting}, 8'000);
  ASSERT_TRUE(found);
  EXPECT_EQ(*found, (std::vector<std::string>{"stale", "never"}));
}

// ---- the event stream ------------------------------------------------------------------------

TEST_P(session_tables_test, the_event_streams_tail_and_incarnation_are_read_through_the_tables) {
  auto tail = tables_->stream_tail(events_stream_);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, stream_position::start());
  ASSERT_TRUE(store().begin());
  ASSERT_TRUE(store().insert_message(events_stream_, stream_position{1}, "one"));  // the log
  ASSERT_TRUE(store().insert_message(events_stream_, stream_position{2}, "two"));
  ASSERT_TRUE(store().commit());
  tail = tables_->stream_tail(events_stream_);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, stream_position{2});
  ASSERT_TRUE(store().begin());
  if (!on_postgres()) {
    ASSERT_TRUE(streams_->merge_log());  // SQLite's append log
  }
  ASSERT_TRUE(store().insert_message(events_stream_, stream_position{3}, std::string(4096, 'x')));
  ASSERT_TRUE(store().commit());
  tail = tables_->stream_tail(events_stream_);
  ASSERT_TRUE(tail);
  EXPECT_EQ(*tail, stream_position{3});

  auto incarnation = tables_->stream_incarnation(events_stream_);
  ASSERT_TRUE(incarnation);
  EXPECT_EQ(*incarnation, 42);
  auto none = tables_->stream_incarnation(stream_id{999});
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

TEST_P(session_tables_test, an_ended_session_without_an_end_reason_is_refused) {
  session_row s = session("s1", "p1", 1, session_state::ended);
  s.end_reason.reset();
  EXPECT_FALSE(tables_->insert_session(s));
  session_row live = session("s2", "p1", 2);
  live.end_reason = end_reason::completed;
  EXPECT_FALSE(tables_->insert_session(live)) << "only an ended session has an end reason";
  auto none = tables_->sessions({});
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST_P(session_tables_test, a_state_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  ASSERT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
  write_behind_ordos_back("UPDATE sessions SET state = 'dreaming' WHERE id = 's2'");
  auto s2 = tables_->session("s2");
  EXPECT_TRUE(damaged(s2,
                      "sessions.state holds 'dreaming', which is not one of created, "
                      "starting, active, suspended, detached, closing, ended"));
  EXPECT_TRUE(damaged(tables_->sessions({}), "sessions.state")) << "a list fails as a whole";
  EXPECT_TRUE(damaged(tables_->live_sessions(), "sessions.state"));
  EXPECT_TRUE(damaged(tables_->sessions_by_state(), "sessions.state"));
  auto s1 = tables_->session("s1");
  ASSERT_TRUE(s1) << "the other sessions still read";
  EXPECT_EQ((*s1)->state, session_state::active);
}

TEST_P(session_tables_test, an_end_reason_the_schema_does_not_know_reads_as_a_damaged_database) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1, session_state::ended)));
  write_behind_ordos_back("UPDATE sessions SET end_reason = 'bored' WHERE id = 's1'");
  EXPECT_TRUE(damaged(tables_->session("s1"), "sessions.end_reason holds 'bored'"));
}

TEST_P(session_tables_test, duplicate_ids_numbers_and_projects_are_refused) {
  ASSERT_TRUE(tables_->insert_session(session("s1", "p1", 1)));
  EXPECT_FALSE(tables_->insert_session(session("s1", "p1", 2))) << "id is unique";
  EXPECT_FALSE(tables_->insert_session(session("s2", "p1", 1))) << "(project, number) is unique";
  EXPECT_FALSE(tables_->insert_project(project("p1")));
  // The cached statements stay usable after a failure.
  EXPECT_TRUE(tables_->insert_session(session("s2", "p1", 2)));
}

TEST_P(session_tables_test, a_read_only_connection_refuses_writes_but_reads) {
  auto check = [&](session_tables& reader) {
    auto p = reader.project("p1");
    ASSERT_TRUE(p) << p.error().message;
    EXPECT_TRUE(*p);
    auto s = reader.insert_project(project("p9"));
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, k_storage_readonly);
  };
  if (on_postgres()) {
    auto ro = postgres::connection::open(pg_url_, {.read_only = true});
    ASSERT_TRUE(ro) << ro.error().message;
    postgres::sql_statements sql(*ro);
    session_tables reader(sql);
    check(reader);
    return;
  }
  auto ro = connection::open(path_, open_mode::read_only, std::chrono::seconds(1));
  ASSERT_TRUE(ro) << ro.error().message;
  statement_cache cache(*ro);
  session_tables reader(cache);
  check(reader);
}

ORDO_SESSION_TABLES_ON_BOTH_STORAGES();

}  // namespace
}  // namespace ordo::sqlite::tables_test
