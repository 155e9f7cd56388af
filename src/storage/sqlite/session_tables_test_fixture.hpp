// The fixture the session tables' tests share: session_tables over a real database, migrated,
// with project p1 and one event stream every session points at, and builders of rows with
// plausible defaults. Every test runs twice: on a SQLite file in the test's temporary directory,
// and on PostgreSQL (a database of its own in the binary's scratch cluster,
// storage/postgres/scratch_cluster.hpp; skipped where PostgreSQL cannot run, unless
// ORDO_REQUIRE_POSTGRES=1): the tables' SQL is one text for both. The tests are split like the
// tables: one file per entity (session_tables_test.cpp for projects, sessions and the event
// stream, session_tables_executions_test.cpp, session_tables_commands_test.cpp,
// session_tables_rows_test.cpp, session_tables_pull_requests_test.cpp).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "storage/postgres/scratch_cluster.hpp"
#include "storage/postgres/sql_statements.hpp"
#include "storage/postgres/stream_tables.hpp"
#include "storage/sqlite/migrations.hpp"
#include "storage/sqlite/session_tables.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite::tables_test {

class session_tables_test : public testing::TestWithParam<std::string> {
 protected:
  bool on_postgres() const { return GetParam() == "postgres"; }

  void SetUp() override {
    if (on_postgres()) {
      set_up_postgres();
    } else {
      set_up_sqlite();
    }
    if (IsSkipped() || HasFatalFailure()) return;
    // The event stream every session of these tests points at.
    ASSERT_TRUE(store().begin());
    stream_row events;
    events.path = "sessions/events";
    events.content_type = "application/json";
    events.incarnation = 42;
    auto id = store().insert_stream(events);
    ASSERT_TRUE(id) << id.error().message;
    events_stream_ = *id;
    ASSERT_TRUE(store().commit());
    ASSERT_TRUE(tables_->insert_project(project("p1")));
  }
  void set_up_sqlite() {
    path_ = testing::TempDir() + "session_tables_test.db";
    remove_files();
    auto db = connection::open(path_, open_mode::read_write_create, std::chrono::seconds(1));
    ASSERT_TRUE(db);
    db_.emplace(std::move(*db));
    ASSERT_TRUE(migrate(*db_));
    cache_.emplace(*db_);
    tables_.emplace(*cache_);
    auto streams = stream_tables::prepare(*db_);
    ASSERT_TRUE(streams) << streams.error().message;
    streams_.emplace(std::move(*streams));
  }
  void set_up_postgres() {
    std::string why;
    pg_cluster_ = postgres::testing::shared_cluster(why);
    if (!pg_cluster_) {
      if (postgres::testing::scratch_cluster::required()) FAIL() << "no PostgreSQL: " << why;
      GTEST_SKIP() << "no PostgreSQL: " << why;
    }
    auto name = postgres::testing::new_database(*pg_cluster_);
    ASSERT_TRUE(name) << name.error().message;
    pg_url_ = pg_cluster_->url(*name);
    auto db = postgres::connection::open(pg_url_);
    ASSERT_TRUE(db) << db.error().message;
    pg_db_.emplace(std::move(*db));
    auto migrated = postgres::migrate(*pg_db_);
    ASSERT_TRUE(migrated) << migrated.error().message;
    pg_sql_.emplace(*pg_db_);
    tables_.emplace(*pg_sql_);
    pg_streams_.emplace(*pg_db_);
  }
  void TearDown() override {
    streams_.reset();
    tables_.reset();
    cache_.reset();
    db_.reset();
    pg_streams_.reset();
    pg_sql_.reset();
    pg_db_.reset();
    if (!path_.empty()) remove_files();
  }
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"})
      std::remove((path_ + suffix).c_str());
  }
  // The stream tables of the test's database.
  storage::stream_store& store() {
    if (on_postgres()) return *pg_streams_;
    return *streams_;
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
                      session_state state = session_state::active) {
    session_row s;
    s.id = id;
    s.project_id = project_id;
    s.number = session_number{number};
    s.state = state;
    if (state == session_state::ended) s.end_reason = end_reason::completed;
    s.created_at_ms = 2000 + number;
    s.updated_at_ms = 2000 + number;
    s.events_stream_id = events_stream_;
    return s;
  }
  static command_row command(const std::string& session_id, std::int64_t seq,
                             command_status status = command_status::accepted) {
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
                            row_kind kind = row_kind::assistant,
                            row_status status = row_status::complete) {
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
    p.state = pr_state::open;
    p.review_decision = review_decision::review_required;
    p.mergeability = mergeability::unknown;
    p.ci_state = ci_state::pending;
    p.created_at_ms = created;
    p.updated_at_ms = created;
    return p;
  }
  // Runs `sql` (an UPDATE) with the schema's CHECK constraints out of the way: how a database
  // edited outside ordo may come to hold a text no enumerated column allows. PostgreSQL has no
  // switch for that: the table's CHECK constraints are dropped.
  void write_behind_ordos_back(const std::string& sql) {
    if (!on_postgres()) {
      ASSERT_TRUE(db_->exec("PRAGMA ignore_check_constraints = ON; " + sql +
                            "; PRAGMA ignore_check_constraints = OFF"));
      return;
    }
    std::string table = sql.substr(7, sql.find(' ', 7) - 7);  // UPDATE <table> SET ...
    ASSERT_TRUE(pg_db_->exec(
        "DO $$ DECLARE c record; BEGIN FOR c IN SELECT conname FROM pg_constraint WHERE "
        "conrelid = '" +
        table + "'::regclass AND contype = 'c' LOOP EXECUTE 'ALTER TABLE " + table +
        " DROP CONSTRAINT ' || quote_ident(c.conname); END LOOP; END $$"));
    ASSERT_TRUE(pg_db_->exec(sql));
  }
  // Whether `r` failed as a damaged database whose message names `what`.
  template <class T>
  static testing::AssertionResult damaged(const result<T>& r, const std::string& what) {
    if (r) return testing::AssertionFailure() << "read without a failure";
    if (r.error().code != k_storage_corrupt || r.error().message.find(what) == std::string::npos) {
      return testing::AssertionFailure() << r.error().code << ": " << r.error().message;
    }
    return testing::AssertionSuccess();
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
  stream_id events_stream_;
  std::optional<connection> db_;
  std::optional<statement_cache> cache_;
  std::optional<session_tables> tables_;
  std::optional<stream_tables> streams_;
  postgres::testing::scratch_cluster* pg_cluster_ = nullptr;
  std::string pg_url_;
  std::optional<postgres::connection> pg_db_;
  std::optional<postgres::sql_statements> pg_sql_;
  std::optional<postgres::stream_tables> pg_streams_;
};

// Runs every test of the suite, whichever file defines it, on both storages: once per binary
// (session_tables_test.cpp).
#define ORDO_SESSION_TABLES_ON_BOTH_STORAGES()                                              \
  INSTANTIATE_TEST_SUITE_P(storages, session_tables_test,                                   \
                           testing::Values(std::string("sqlite"), std::string("postgres")), \
                           [](const auto& info) { return info.param; })

}  // namespace ordo::sqlite::tables_test
