// Typed access to the session tables (schema: migrations.cpp, versions 2 and 3): the row types
// and session_tables. The only place session SQL lives. A session_tables works on one
// connection's statement cache: the writer's (inside write jobs) or a reader thread's (inside
// read tasks); it belongs to that thread.
//
// Its members are defined in the file of their entity: session_tables.cpp (projects, sessions,
// the session's event stream), session_tables_executions.cpp, session_tables_commands.cpp,
// session_tables_rows.cpp and session_tables_pull_requests.cpp; how they run their statements
// is in session_table_statements.hpp.
//
// Enumerated columns are enums in the rows (session_enums.hpp has each one's texts); a text read
// that names no value fails the read with storage_corrupt.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "base/stream_position.hpp"
#include "base/strong_id.hpp"
#include "storage/sql_statement.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/session_enums.hpp"

namespace ordo::sqlite {

// A session's number within its project, the N of its id "{project}-{N}": handed out in order by
// the project's next_session_number and never reused. An integer only here (the tables) and in
// what the API shows.
using session_number = strong_id<struct session_number_tag>;

struct project_row {
  std::string id;
  std::string name;
  std::optional<std::string> repo_path;
  std::optional<std::string> origin_url;
  std::optional<std::string> description;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> archived_at_ms;
  std::int64_t revision = 1;
  session_number next_session_number{1};
};

struct session_row {
  std::int64_t seq = 0;
  std::string id;
  std::string project_id;
  session_number number;
  session_state state = session_state::created;
  std::optional<sqlite::end_reason> end_reason;  // exactly when state is ended
  std::int64_t revision = 1;
  std::optional<std::string> agent_kind;
  std::optional<std::string> model;
  std::optional<std::string> title;
  std::optional<std::string> branch;
  std::optional<std::string> workspace_path;
  std::string tags = "[]";  // JSON array of strings
  std::optional<std::int64_t> last_heartbeat_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
  std::optional<std::int64_t> ended_at_ms;
  stream_id events_stream_id;
  std::int64_t next_row_seq = 1;
  std::int64_t next_command_seq = 1;
  std::int64_t next_generation = 1;
  // Derived when read: the unfinished execution, and whether an approval request is pending.
  std::optional<std::int64_t> active_generation;
  std::optional<std::int64_t> active_started_at_ms;
  bool awaiting_approval = false;
};

struct execution_row {
  std::string session_id;
  std::int64_t generation = 0;
  std::int64_t started_at_ms = 0;
  std::optional<std::int64_t> finished_at_ms;
  std::optional<sqlite::finish_reason> finish_reason;  // exactly when finished
};

struct command_row {
  std::string session_id;
  std::int64_t seq = 0;
  std::string request_id;
  std::string body;  // canonical JSON
  command_status status = command_status::accepted;
  std::optional<std::string> result;  // JSON
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct transcript_row {
  std::string session_id;
  std::int64_t seq = 0;
  std::string row_id;
  row_kind kind = row_kind::user;
  row_status status = row_status::complete;
  std::string body;  // canonical JSON
  std::int64_t revision = 1;
  std::optional<std::string> request_id;
  std::optional<std::string> request_body;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct pr_row {
  std::string url;
  std::string session_id;
  std::optional<std::int64_t> number;
  std::optional<std::string> title;
  pr_state state = pr_state::open;
  sqlite::review_decision review_decision = sqlite::review_decision::none;
  sqlite::mergeability mergeability = sqlite::mergeability::unknown;
  sqlite::ci_state ci_state = sqlite::ci_state::none;
  std::optional<std::string> head_commit;
  std::int64_t revision = 1;
  std::int64_t next_check_seq = 1;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct check_row {
  std::string pr_url;
  std::string name;
  std::string commit_sha;
  std::int64_t seq = 0;
  check_status status = check_status::queued;
  std::optional<std::string> url;
  std::optional<std::int64_t> started_at_ms;
  std::optional<std::int64_t> completed_at_ms;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct comment_row {
  std::string pr_url;
  std::string comment_id;
  std::optional<std::string> author;
  std::string body;
  std::optional<std::string> path;
  std::optional<std::int64_t> line;
  bool resolved = false;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

struct session_filter {
  std::optional<std::string> project_id;
  std::optional<session_state> state;
  std::optional<sqlite::client_state> client_state;
  std::optional<std::int64_t> before_seq;  // paging: sessions created before this one
  int limit = 50;
};

struct row_page_query {
  std::optional<std::int64_t> after;
  std::optional<std::int64_t> before;
  int limit = 100;
  bool newest_first = false;  // with neither bound: the latest rows
};

// A SQLite connection's statement cache as the session tables use it (storage/sql_statement.hpp).
class statement_cache_sql final : public storage::sql_connection {
 public:
  explicit statement_cache_sql(statement_cache& cache) : cache_(cache) {}
  result<storage::sql_statement*> get(std::string_view sql) override;
  result<stream_position> stream_tail(stream_id stream) override;

 private:
  statement_cache& cache_;
};

class session_tables {
 public:
  // On any storage's connection (SQLite's or PostgreSQL's, storage/sql_statement.hpp).
  explicit session_tables(storage::sql_connection& sql) : sql_(&sql) {}
  // On a SQLite connection's statement cache.
  explicit session_tables(statement_cache& statements)
      : own_(std::in_place, statements), sql_(&*own_) {}
  session_tables(const session_tables&) = delete;
  session_tables& operator=(const session_tables&) = delete;

  // ---- projects
  result<std::optional<project_row>> project(std::string_view id);
  status insert_project(const project_row& row);
  status update_project(const project_row& row);
  result<std::vector<project_row>> projects(bool include_archived);

  // ---- sessions
  result<std::optional<session_row>> session(std::string_view id);
  status insert_session(const session_row& row);
  // Writes every mutable column and counter of the row.
  status update_session(const session_row& row);
  result<std::vector<session_row>> sessions(const session_filter& filter);
  // Every session that has not ended, oldest first.
  result<std::vector<session_row>> live_sessions();
  // The id of the stream at `path` (live), for reads that need a managed stream's tail.
  result<std::optional<stream_id>> stream_by_path(std::string_view path);
  // How many sessions are in each state, and commands in each status (states with none are
  // left out): what /metrics reports.
  result<std::vector<std::pair<session_state, std::int64_t>>> sessions_by_state();
  result<std::vector<std::pair<command_status, std::int64_t>>> commands_by_status();
  // Sessions in `states` whose last heartbeat is older than `before_ms`.
  result<std::vector<std::string>> sessions_with_heartbeat_before(
      const std::vector<session_state>& states, std::int64_t before_ms);

  // ---- executions
  result<std::optional<execution_row>> execution(std::string_view session_id,
                                                 std::int64_t generation);
  result<std::optional<execution_row>> active_execution(std::string_view session_id);
  result<std::vector<execution_row>> executions(std::string_view session_id);
  status insert_execution(const execution_row& row);
  status finish_execution(std::string_view session_id, std::int64_t generation,
                          std::int64_t finished_at_ms, finish_reason reason);

  // ---- commands
  result<std::optional<command_row>> command(std::string_view session_id, std::int64_t seq);
  result<std::optional<command_row>> command_by_request(std::string_view session_id,
                                                        std::string_view request_id);
  status insert_command(const command_row& row);
  status update_command_status(std::string_view session_id, std::int64_t seq, command_status status,
                               const std::optional<std::string>& result,
                               std::int64_t updated_at_ms);
  // Accepted or delivered commands, in sequence order.
  result<std::vector<command_row>> pending_commands(std::string_view session_id);
  result<std::vector<command_row>> commands(std::string_view session_id, std::int64_t after_seq,
                                            int limit, bool pending_only = false);

  // ---- rows
  result<std::optional<transcript_row>> row_by_id(std::string_view session_id,
                                                  std::string_view row_id);
  result<std::optional<transcript_row>> row_by_request(std::string_view session_id,
                                                       std::string_view request_id);
  status insert_row(const transcript_row& row);
  status update_row(const transcript_row& row);
  result<std::vector<transcript_row>> rows(std::string_view session_id, const row_page_query& q);

  // ---- pull requests
  result<std::optional<pr_row>> pr(std::string_view url);
  status insert_pr(const pr_row& row);
  status update_pr(const pr_row& row);
  result<std::vector<pr_row>> prs_of_session(std::string_view session_id);
  result<std::optional<check_row>> check(std::string_view pr_url, std::string_view name,
                                         std::string_view commit_sha);
  status insert_check(const check_row& row);
  status update_check(const check_row& row);
  // In the order checks were first seen (seq).
  result<std::vector<check_row>> checks_of_pr(std::string_view pr_url);
  result<std::vector<comment_row>> comments_of_pr(std::string_view pr_url);
  status insert_comment(const comment_row& row);
  status update_comment(const comment_row& row);
  status delete_comment(std::string_view pr_url, std::string_view comment_id);

  // ---- the session's event stream
  // MAX(seq) of a stream's messages (0 when empty): the tail, read inside the caller's
  // transaction so a snapshot and its offset agree.
  result<stream_position> stream_tail(stream_id stream);
  result<std::int64_t> stream_incarnation(stream_id stream);

 private:
  result<storage::sql_statement*> prepare(std::string_view sql) { return sql_->get(sql); }
  std::optional<statement_cache_sql> own_;
  storage::sql_connection* sql_;
};

}  // namespace ordo::sqlite
