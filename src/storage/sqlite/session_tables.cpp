#include "storage/sqlite/session_tables.hpp"

#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {

namespace {

constexpr std::string_view k_project_columns =
    "id, name, repo_path, origin_url, description, created_at_ms, updated_at_ms, "
    "archived_at_ms, revision, next_session_number";

project_row read_project(const statement& s) {
  project_row r;
  r.id = std::string(s.column_text(0));
  r.name = std::string(s.column_text(1));
  r.repo_path = s.column_optional_text(2);
  r.origin_url = s.column_optional_text(3);
  r.description = s.column_optional_text(4);
  r.created_at_ms = s.column_int64(5);
  r.updated_at_ms = s.column_int64(6);
  r.archived_at_ms = s.column_optional_int64(7);
  r.revision = s.column_int64(8);
  r.next_session_number = s.column_int64(9);
  return r;
}

// The derived client state, as SQL over one session row `s`.
constexpr std::string_view k_awaiting_approval =
    "EXISTS (SELECT 1 FROM rows r WHERE r.session_id = s.id AND r.kind = 'approval_request' "
    "AND r.status = 'pending')";
constexpr std::string_view k_active_generation =
    "(SELECT e.generation FROM executions e WHERE e.session_id = s.id AND "
    "e.finished_at_ms IS NULL)";
constexpr std::string_view k_active_started =
    "(SELECT e.started_at_ms FROM executions e WHERE e.session_id = s.id AND "
    "e.finished_at_ms IS NULL)";

std::string session_select() {
  return "SELECT s.seq, s.id, s.project_id, s.number, s.state, s.end_reason, s.revision, "
         "s.agent_kind, s.model, s.title, s.branch, s.workspace_path, s.tags, "
         "s.last_heartbeat_ms, s.created_at_ms, s.updated_at_ms, s.ended_at_ms, "
         "s.events_stream_id, s.next_row_seq, s.next_command_seq, s.next_generation, " +
         std::string(k_active_generation) + ", " + std::string(k_active_started) + ", " +
         std::string(k_awaiting_approval) + " FROM sessions s";
}

session_row read_session(const statement& s) {
  session_row r;
  r.seq = s.column_int64(0);
  r.id = std::string(s.column_text(1));
  r.project_id = std::string(s.column_text(2));
  r.number = s.column_int64(3);
  r.state = std::string(s.column_text(4));
  r.end_reason = s.column_optional_text(5);
  r.revision = s.column_int64(6);
  r.agent_kind = s.column_optional_text(7);
  r.model = s.column_optional_text(8);
  r.title = s.column_optional_text(9);
  r.branch = s.column_optional_text(10);
  r.workspace_path = s.column_optional_text(11);
  r.tags = std::string(s.column_text(12));
  r.last_heartbeat_ms = s.column_optional_int64(13);
  r.created_at_ms = s.column_int64(14);
  r.updated_at_ms = s.column_int64(15);
  r.ended_at_ms = s.column_optional_int64(16);
  r.events_stream_id = s.column_int64(17);
  r.next_row_seq = s.column_int64(18);
  r.next_command_seq = s.column_int64(19);
  r.next_generation = s.column_int64(20);
  r.active_generation = s.column_optional_int64(21);
  r.active_started_at_ms = s.column_optional_int64(22);
  r.awaiting_approval = s.column_int64(23) != 0;
  return r;
}

execution_row read_execution(const statement& s) {
  return execution_row{std::string(s.column_text(0)), s.column_int64(1), s.column_int64(2),
                       s.column_optional_int64(3), s.column_optional_text(4)};
}

constexpr std::string_view k_command_columns =
    "session_id, seq, request_id, body, status, result, created_at_ms, updated_at_ms";

command_row read_command(const statement& s) {
  return command_row{std::string(s.column_text(0)),
                     s.column_int64(1),
                     std::string(s.column_text(2)),
                     std::string(s.column_text(3)),
                     std::string(s.column_text(4)),
                     s.column_optional_text(5),
                     s.column_int64(6),
                     s.column_int64(7)};
}

constexpr std::string_view k_row_columns =
    "session_id, seq, row_id, kind, status, body, revision, request_id, request_body, "
    "created_at_ms, updated_at_ms";

transcript_row read_row(const statement& s) {
  transcript_row r;
  r.session_id = std::string(s.column_text(0));
  r.seq = s.column_int64(1);
  r.row_id = std::string(s.column_text(2));
  r.kind = std::string(s.column_text(3));
  r.status = std::string(s.column_text(4));
  r.body = std::string(s.column_text(5));
  r.revision = s.column_int64(6);
  r.request_id = s.column_optional_text(7);
  r.request_body = s.column_optional_text(8);
  r.created_at_ms = s.column_int64(9);
  r.updated_at_ms = s.column_int64(10);
  return r;
}

template <class Row, class Reader>
result<std::optional<Row>> one(statement* s, Reader read) {
  statement_use use(s);
  auto row = use->step();
  if (!row) return std::move(row).error();
  if (!*row) return std::optional<Row>();
  return std::optional<Row>(read(*use));
}

template <class Row, class Reader>
result<std::vector<Row>> all(statement* s, Reader read) {
  statement_use use(s);
  std::vector<Row> out;
  for (;;) {
    auto row = use->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    out.push_back(read(*use));
  }
  return out;
}

status run(statement* s) {
  statement_use use(s);
  return use->run();
}

#define ORDO_PREPARE(var, sql)                                   \
  auto var##_prepared = prepare(sql);                            \
  if (!var##_prepared) return std::move(var##_prepared).error(); \
  statement* var = *var##_prepared

}  // namespace

// ---- projects --------------------------------------------------------------------------------

result<std::optional<project_row>> session_tables::project(std::string_view id) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_project_columns) + " FROM projects WHERE id = ?");
  s->bind_text(1, id);
  return one<project_row>(s, read_project);
}

status session_tables::insert_project(const project_row& r) {
  ORDO_PREPARE(s, "INSERT INTO projects (" + std::string(k_project_columns) +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.id);
  s->bind_text(2, r.name);
  s->bind_optional_text(3, r.repo_path);
  s->bind_optional_text(4, r.origin_url);
  s->bind_optional_text(5, r.description);
  s->bind_int64(6, r.created_at_ms);
  s->bind_int64(7, r.updated_at_ms);
  s->bind_optional_int64(8, r.archived_at_ms);
  s->bind_int64(9, r.revision);
  s->bind_int64(10, r.next_session_number);
  return run(s);
}

status session_tables::update_project(const project_row& r) {
  ORDO_PREPARE(s,
               "UPDATE projects SET name = ?, repo_path = ?, origin_url = ?, description = ?, "
               "updated_at_ms = ?, archived_at_ms = ?, revision = ?, next_session_number = ? "
               "WHERE id = ?");
  s->bind_text(1, r.name);
  s->bind_optional_text(2, r.repo_path);
  s->bind_optional_text(3, r.origin_url);
  s->bind_optional_text(4, r.description);
  s->bind_int64(5, r.updated_at_ms);
  s->bind_optional_int64(6, r.archived_at_ms);
  s->bind_int64(7, r.revision);
  s->bind_int64(8, r.next_session_number);
  s->bind_text(9, r.id);
  return run(s);
}

result<std::vector<project_row>> session_tables::projects(bool include_archived) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_project_columns) + " FROM projects" +
                      (include_archived ? "" : " WHERE archived_at_ms IS NULL") + " ORDER BY id");
  return all<project_row>(s, read_project);
}

// ---- sessions --------------------------------------------------------------------------------

result<std::optional<session_row>> session_tables::session(std::string_view id) {
  ORDO_PREPARE(s, session_select() + " WHERE s.id = ?");
  s->bind_text(1, id);
  return one<session_row>(s, read_session);
}

status session_tables::insert_session(const session_row& r) {
  ORDO_PREPARE(s,
               "INSERT INTO sessions (id, project_id, number, state, end_reason, revision, "
               "agent_kind, model, title, branch, workspace_path, tags, last_heartbeat_ms, "
               "created_at_ms, updated_at_ms, ended_at_ms, events_stream_id, next_row_seq, "
               "next_command_seq, next_generation) "
               "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.id);
  s->bind_text(2, r.project_id);
  s->bind_int64(3, r.number);
  s->bind_text(4, r.state);
  s->bind_optional_text(5, r.end_reason);
  s->bind_int64(6, r.revision);
  s->bind_optional_text(7, r.agent_kind);
  s->bind_optional_text(8, r.model);
  s->bind_optional_text(9, r.title);
  s->bind_optional_text(10, r.branch);
  s->bind_optional_text(11, r.workspace_path);
  s->bind_text(12, r.tags);
  s->bind_optional_int64(13, r.last_heartbeat_ms);
  s->bind_int64(14, r.created_at_ms);
  s->bind_int64(15, r.updated_at_ms);
  s->bind_optional_int64(16, r.ended_at_ms);
  s->bind_int64(17, r.events_stream_id);
  s->bind_int64(18, r.next_row_seq);
  s->bind_int64(19, r.next_command_seq);
  s->bind_int64(20, r.next_generation);
  return run(s);
}

status session_tables::update_session(const session_row& r) {
  ORDO_PREPARE(s,
               "UPDATE sessions SET state = ?, end_reason = ?, revision = ?, agent_kind = ?, "
               "model = ?, title = ?, branch = ?, workspace_path = ?, tags = ?, "
               "last_heartbeat_ms = ?, updated_at_ms = ?, ended_at_ms = ?, next_row_seq = ?, "
               "next_command_seq = ?, next_generation = ? WHERE id = ?");
  s->bind_text(1, r.state);
  s->bind_optional_text(2, r.end_reason);
  s->bind_int64(3, r.revision);
  s->bind_optional_text(4, r.agent_kind);
  s->bind_optional_text(5, r.model);
  s->bind_optional_text(6, r.title);
  s->bind_optional_text(7, r.branch);
  s->bind_optional_text(8, r.workspace_path);
  s->bind_text(9, r.tags);
  s->bind_optional_int64(10, r.last_heartbeat_ms);
  s->bind_int64(11, r.updated_at_ms);
  s->bind_optional_int64(12, r.ended_at_ms);
  s->bind_int64(13, r.next_row_seq);
  s->bind_int64(14, r.next_command_seq);
  s->bind_int64(15, r.next_generation);
  s->bind_text(16, r.id);
  return run(s);
}

result<std::vector<session_row>> session_tables::sessions(const session_filter& f) {
  std::string sql = session_select() + " WHERE 1 = 1";
  if (f.project_id) sql += " AND s.project_id = ?1";
  if (f.state) sql += " AND s.state = ?2";
  if (f.client_state) {
    sql += " AND (CASE WHEN s.state = 'ended' THEN 'idle' WHEN " +
           std::string(k_awaiting_approval) + " THEN 'requires_action' WHEN " +
           std::string(k_active_generation) + " IS NOT NULL THEN 'running' ELSE 'idle' END) = ?3";
  }
  if (f.before_seq) sql += " AND s.seq < ?4";
  sql += " ORDER BY s.seq DESC LIMIT ?5";
  ORDO_PREPARE(s, sql);
  if (f.project_id) s->bind_text(1, *f.project_id);
  if (f.state) s->bind_text(2, *f.state);
  if (f.client_state) s->bind_text(3, *f.client_state);
  if (f.before_seq) s->bind_int64(4, *f.before_seq);
  s->bind_int64(5, f.limit);
  return all<session_row>(s, read_session);
}

result<std::vector<session_row>> session_tables::live_sessions() {
  ORDO_PREPARE(s, session_select() + " WHERE s.state <> 'ended' ORDER BY s.seq");
  return all<session_row>(s, read_session);
}

result<std::optional<std::int64_t>> session_tables::stream_by_path(std::string_view path) {
  ORDO_PREPARE(s, "SELECT id FROM streams WHERE path = ? AND state = 0");
  s->bind_text(1, path);
  return one<std::int64_t>(s, [](const statement& st) { return st.column_int64(0); });
}

namespace {

result<std::vector<std::pair<std::string, std::int64_t>>> counts(statement* s) {
  return all<std::pair<std::string, std::int64_t>>(s, [](const statement& st) {
    return std::pair{std::string(st.column_text(0)), st.column_int64(1)};
  });
}

}  // namespace

result<std::vector<std::pair<std::string, std::int64_t>>> session_tables::sessions_by_state() {
  ORDO_PREPARE(s, "SELECT state, COUNT(*) FROM sessions GROUP BY state");
  return counts(s);
}

result<std::vector<std::pair<std::string, std::int64_t>>> session_tables::commands_by_status() {
  ORDO_PREPARE(s, "SELECT status, COUNT(*) FROM commands GROUP BY status");
  return counts(s);
}

result<std::vector<std::string>> session_tables::sessions_with_heartbeat_before(
    const std::vector<std::string>& states, std::int64_t before_ms) {
  std::string sql = "SELECT id FROM sessions WHERE state IN (";
  for (std::size_t i = 0; i < states.size(); ++i)
    sql += i ? ", ?" : "?";
  sql += ") AND COALESCE(last_heartbeat_ms, created_at_ms) < ? ORDER BY seq";
  ORDO_PREPARE(s, sql);
  int i = 1;
  for (const auto& state : states)
    s->bind_text(i++, state);
  s->bind_int64(i, before_ms);
  return all<std::string>(s, [](const statement& st) { return std::string(st.column_text(0)); });
}

// ---- executions ------------------------------------------------------------------------------

result<std::optional<execution_row>> session_tables::execution(std::string_view session_id,
                                                               std::int64_t generation) {
  ORDO_PREPARE(s,
               "SELECT session_id, generation, started_at_ms, finished_at_ms, finish_reason "
               "FROM executions WHERE session_id = ? AND generation = ?");
  s->bind_text(1, session_id);
  s->bind_int64(2, generation);
  return one<execution_row>(s, read_execution);
}

result<std::optional<execution_row>> session_tables::active_execution(std::string_view session_id) {
  ORDO_PREPARE(s,
               "SELECT session_id, generation, started_at_ms, finished_at_ms, finish_reason "
               "FROM executions WHERE session_id = ? AND finished_at_ms IS NULL");
  s->bind_text(1, session_id);
  return one<execution_row>(s, read_execution);
}

result<std::vector<execution_row>> session_tables::executions(std::string_view session_id) {
  ORDO_PREPARE(s,
               "SELECT session_id, generation, started_at_ms, finished_at_ms, finish_reason "
               "FROM executions WHERE session_id = ? ORDER BY generation");
  s->bind_text(1, session_id);
  return all<execution_row>(s, read_execution);
}

status session_tables::insert_execution(const execution_row& r) {
  ORDO_PREPARE(s,
               "INSERT INTO executions (session_id, generation, started_at_ms) VALUES (?, ?, ?)");
  s->bind_text(1, r.session_id);
  s->bind_int64(2, r.generation);
  s->bind_int64(3, r.started_at_ms);
  return run(s);
}

status session_tables::finish_execution(std::string_view session_id, std::int64_t generation,
                                        std::int64_t finished_at_ms, std::string_view reason) {
  ORDO_PREPARE(s,
               "UPDATE executions SET finished_at_ms = ?, finish_reason = ? "
               "WHERE session_id = ? AND generation = ? AND finished_at_ms IS NULL");
  s->bind_int64(1, finished_at_ms);
  s->bind_text(2, reason);
  s->bind_text(3, session_id);
  s->bind_int64(4, generation);
  return run(s);
}

// ---- commands --------------------------------------------------------------------------------

result<std::optional<command_row>> session_tables::command(std::string_view session_id,
                                                           std::int64_t seq) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_command_columns) +
                      " FROM commands WHERE session_id = ? AND seq = ?");
  s->bind_text(1, session_id);
  s->bind_int64(2, seq);
  return one<command_row>(s, read_command);
}

result<std::optional<command_row>> session_tables::command_by_request(std::string_view session_id,
                                                                      std::string_view request_id) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_command_columns) +
                      " FROM commands WHERE session_id = ? AND request_id = ?");
  s->bind_text(1, session_id);
  s->bind_text(2, request_id);
  return one<command_row>(s, read_command);
}

status session_tables::insert_command(const command_row& r) {
  ORDO_PREPARE(s, "INSERT INTO commands (" + std::string(k_command_columns) +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.session_id);
  s->bind_int64(2, r.seq);
  s->bind_text(3, r.request_id);
  s->bind_text(4, r.body);
  s->bind_text(5, r.status);
  s->bind_optional_text(6, r.result);
  s->bind_int64(7, r.created_at_ms);
  s->bind_int64(8, r.updated_at_ms);
  return run(s);
}

status session_tables::update_command_status(std::string_view session_id, std::int64_t seq,
                                             std::string_view status,
                                             const std::optional<std::string>& result,
                                             std::int64_t updated_at_ms) {
  ORDO_PREPARE(s,
               "UPDATE commands SET status = ?, result = COALESCE(?, result), updated_at_ms = ? "
               "WHERE session_id = ? AND seq = ?");
  s->bind_text(1, status);
  s->bind_optional_text(2, result);
  s->bind_int64(3, updated_at_ms);
  s->bind_text(4, session_id);
  s->bind_int64(5, seq);
  return run(s);
}

result<std::vector<command_row>> session_tables::pending_commands(std::string_view session_id) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_command_columns) +
                      " FROM commands WHERE session_id = ? AND status IN ('accepted', "
                      "'delivered') ORDER BY seq");
  s->bind_text(1, session_id);
  return all<command_row>(s, read_command);
}

result<std::vector<command_row>> session_tables::commands(std::string_view session_id,
                                                          std::int64_t after_seq, int limit,
                                                          bool pending_only) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_command_columns) +
                      " FROM commands WHERE session_id = ? AND seq > ?" +
                      (pending_only ? " AND status IN ('accepted', 'delivered')" : "") +
                      " ORDER BY seq LIMIT ?");
  s->bind_text(1, session_id);
  s->bind_int64(2, after_seq);
  s->bind_int64(3, limit);
  return all<command_row>(s, read_command);
}

// ---- rows ------------------------------------------------------------------------------------

result<std::optional<transcript_row>> session_tables::row_by_id(std::string_view session_id,
                                                                std::string_view row_id) {
  ORDO_PREPARE(
      s, "SELECT " + std::string(k_row_columns) + " FROM rows WHERE session_id = ? AND row_id = ?");
  s->bind_text(1, session_id);
  s->bind_text(2, row_id);
  return one<transcript_row>(s, read_row);
}

result<std::optional<transcript_row>> session_tables::row_by_request(std::string_view session_id,
                                                                     std::string_view request_id) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_row_columns) +
                      " FROM rows WHERE session_id = ? AND request_id = ?");
  s->bind_text(1, session_id);
  s->bind_text(2, request_id);
  return one<transcript_row>(s, read_row);
}

status session_tables::insert_row(const transcript_row& r) {
  ORDO_PREPARE(s, "INSERT INTO rows (" + std::string(k_row_columns) +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.session_id);
  s->bind_int64(2, r.seq);
  s->bind_text(3, r.row_id);
  s->bind_text(4, r.kind);
  s->bind_text(5, r.status);
  s->bind_text(6, r.body);
  s->bind_int64(7, r.revision);
  s->bind_optional_text(8, r.request_id);
  s->bind_optional_text(9, r.request_body);
  s->bind_int64(10, r.created_at_ms);
  s->bind_int64(11, r.updated_at_ms);
  return run(s);
}

status session_tables::update_row(const transcript_row& r) {
  ORDO_PREPARE(s,
               "UPDATE rows SET kind = ?, status = ?, body = ?, revision = ?, updated_at_ms = ? "
               "WHERE session_id = ? AND seq = ?");
  s->bind_text(1, r.kind);
  s->bind_text(2, r.status);
  s->bind_text(3, r.body);
  s->bind_int64(4, r.revision);
  s->bind_int64(5, r.updated_at_ms);
  s->bind_text(6, r.session_id);
  s->bind_int64(7, r.seq);
  return run(s);
}

result<std::vector<transcript_row>> session_tables::rows(std::string_view session_id,
                                                         const row_page_query& q) {
  std::string sql = "SELECT " + std::string(k_row_columns) + " FROM rows WHERE session_id = ?1";
  if (q.after) sql += " AND seq > ?2";
  if (q.before) sql += " AND seq < ?3";
  sql += q.newest_first ? " ORDER BY seq DESC LIMIT ?4" : " ORDER BY seq LIMIT ?4";
  ORDO_PREPARE(s, sql);
  s->bind_text(1, session_id);
  if (q.after) s->bind_int64(2, *q.after);
  if (q.before) s->bind_int64(3, *q.before);
  s->bind_int64(4, q.limit);
  return all<transcript_row>(s, read_row);
}

// ---- pull requests ---------------------------------------------------------------------------

namespace {

constexpr std::string_view k_pr_columns =
    "url, session_id, number, title, state, review_decision, mergeability, ci_state, "
    "head_commit, revision, next_check_seq, created_at_ms, updated_at_ms";

pr_row read_pr(const statement& s) {
  pr_row r;
  r.url = std::string(s.column_text(0));
  r.session_id = std::string(s.column_text(1));
  r.number = s.column_optional_int64(2);
  r.title = s.column_optional_text(3);
  r.state = std::string(s.column_text(4));
  r.review_decision = std::string(s.column_text(5));
  r.mergeability = std::string(s.column_text(6));
  r.ci_state = std::string(s.column_text(7));
  r.head_commit = s.column_optional_text(8);
  r.revision = s.column_int64(9);
  r.next_check_seq = s.column_int64(10);
  r.created_at_ms = s.column_int64(11);
  r.updated_at_ms = s.column_int64(12);
  return r;
}

constexpr std::string_view k_check_columns =
    "pr_url, name, commit_sha, seq, status, url, started_at_ms, completed_at_ms, created_at_ms, "
    "updated_at_ms";

check_row read_check(const statement& s) {
  check_row r;
  r.pr_url = std::string(s.column_text(0));
  r.name = std::string(s.column_text(1));
  r.commit_sha = std::string(s.column_text(2));
  r.seq = s.column_int64(3);
  r.status = std::string(s.column_text(4));
  r.url = s.column_optional_text(5);
  r.started_at_ms = s.column_optional_int64(6);
  r.completed_at_ms = s.column_optional_int64(7);
  r.created_at_ms = s.column_int64(8);
  r.updated_at_ms = s.column_int64(9);
  return r;
}

constexpr std::string_view k_comment_columns =
    "pr_url, comment_id, author, body, path, line, resolved, created_at_ms, updated_at_ms";

comment_row read_comment(const statement& s) {
  comment_row r;
  r.pr_url = std::string(s.column_text(0));
  r.comment_id = std::string(s.column_text(1));
  r.author = s.column_optional_text(2);
  r.body = std::string(s.column_text(3));
  r.path = s.column_optional_text(4);
  r.line = s.column_optional_int64(5);
  r.resolved = s.column_int64(6) != 0;
  r.created_at_ms = s.column_int64(7);
  r.updated_at_ms = s.column_int64(8);
  return r;
}

}  // namespace

result<std::optional<pr_row>> session_tables::pr(std::string_view url) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_pr_columns) + " FROM prs WHERE url = ?");
  s->bind_text(1, url);
  return one<pr_row>(s, read_pr);
}

status session_tables::insert_pr(const pr_row& r) {
  ORDO_PREPARE(s, "INSERT INTO prs (" + std::string(k_pr_columns) +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.url);
  s->bind_text(2, r.session_id);
  s->bind_optional_int64(3, r.number);
  s->bind_optional_text(4, r.title);
  s->bind_text(5, r.state);
  s->bind_text(6, r.review_decision);
  s->bind_text(7, r.mergeability);
  s->bind_text(8, r.ci_state);
  s->bind_optional_text(9, r.head_commit);
  s->bind_int64(10, r.revision);
  s->bind_int64(11, r.next_check_seq);
  s->bind_int64(12, r.created_at_ms);
  s->bind_int64(13, r.updated_at_ms);
  return run(s);
}

status session_tables::update_pr(const pr_row& r) {
  ORDO_PREPARE(s,
               "UPDATE prs SET number = ?, title = ?, state = ?, review_decision = ?, "
               "mergeability = ?, ci_state = ?, head_commit = ?, revision = ?, "
               "next_check_seq = ?, updated_at_ms = ? WHERE url = ?");
  s->bind_optional_int64(1, r.number);
  s->bind_optional_text(2, r.title);
  s->bind_text(3, r.state);
  s->bind_text(4, r.review_decision);
  s->bind_text(5, r.mergeability);
  s->bind_text(6, r.ci_state);
  s->bind_optional_text(7, r.head_commit);
  s->bind_int64(8, r.revision);
  s->bind_int64(9, r.next_check_seq);
  s->bind_int64(10, r.updated_at_ms);
  s->bind_text(11, r.url);
  return run(s);
}

result<std::vector<pr_row>> session_tables::prs_of_session(std::string_view session_id) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_pr_columns) +
                      " FROM prs WHERE session_id = ? ORDER BY created_at_ms, url");
  s->bind_text(1, session_id);
  return all<pr_row>(s, read_pr);
}

result<std::optional<check_row>> session_tables::check(std::string_view pr_url,
                                                       std::string_view name,
                                                       std::string_view commit_sha) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_check_columns) +
                      " FROM pr_checks WHERE pr_url = ? AND name = ? AND commit_sha = ?");
  s->bind_text(1, pr_url);
  s->bind_text(2, name);
  s->bind_text(3, commit_sha);
  return one<check_row>(s, read_check);
}

status session_tables::insert_check(const check_row& r) {
  ORDO_PREPARE(s, "INSERT INTO pr_checks (" + std::string(k_check_columns) +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.pr_url);
  s->bind_text(2, r.name);
  s->bind_text(3, r.commit_sha);
  s->bind_int64(4, r.seq);
  s->bind_text(5, r.status);
  s->bind_optional_text(6, r.url);
  s->bind_optional_int64(7, r.started_at_ms);
  s->bind_optional_int64(8, r.completed_at_ms);
  s->bind_int64(9, r.created_at_ms);
  s->bind_int64(10, r.updated_at_ms);
  return run(s);
}

status session_tables::update_check(const check_row& r) {
  ORDO_PREPARE(s,
               "UPDATE pr_checks SET status = ?, url = ?, started_at_ms = ?, completed_at_ms = ?, "
               "updated_at_ms = ? WHERE pr_url = ? AND name = ? AND commit_sha = ?");
  s->bind_text(1, r.status);
  s->bind_optional_text(2, r.url);
  s->bind_optional_int64(3, r.started_at_ms);
  s->bind_optional_int64(4, r.completed_at_ms);
  s->bind_int64(5, r.updated_at_ms);
  s->bind_text(6, r.pr_url);
  s->bind_text(7, r.name);
  s->bind_text(8, r.commit_sha);
  return run(s);
}

result<std::vector<check_row>> session_tables::checks_of_pr(std::string_view pr_url) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_check_columns) +
                      " FROM pr_checks WHERE pr_url = ? ORDER BY seq");
  s->bind_text(1, pr_url);
  return all<check_row>(s, read_check);
}

result<std::vector<comment_row>> session_tables::comments_of_pr(std::string_view pr_url) {
  ORDO_PREPARE(s, "SELECT " + std::string(k_comment_columns) +
                      " FROM pr_comments WHERE pr_url = ? ORDER BY created_at_ms, comment_id");
  s->bind_text(1, pr_url);
  return all<comment_row>(s, read_comment);
}

status session_tables::insert_comment(const comment_row& r) {
  ORDO_PREPARE(s, "INSERT INTO pr_comments (" + std::string(k_comment_columns) +
                      ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  s->bind_text(1, r.pr_url);
  s->bind_text(2, r.comment_id);
  s->bind_optional_text(3, r.author);
  s->bind_text(4, r.body);
  s->bind_optional_text(5, r.path);
  s->bind_optional_int64(6, r.line);
  s->bind_int64(7, r.resolved ? 1 : 0);
  s->bind_int64(8, r.created_at_ms);
  s->bind_int64(9, r.updated_at_ms);
  return run(s);
}

status session_tables::update_comment(const comment_row& r) {
  ORDO_PREPARE(s,
               "UPDATE pr_comments SET author = ?, body = ?, path = ?, line = ?, resolved = ?, "
               "updated_at_ms = ? WHERE pr_url = ? AND comment_id = ?");
  s->bind_optional_text(1, r.author);
  s->bind_text(2, r.body);
  s->bind_optional_text(3, r.path);
  s->bind_optional_int64(4, r.line);
  s->bind_int64(5, r.resolved ? 1 : 0);
  s->bind_int64(6, r.updated_at_ms);
  s->bind_text(7, r.pr_url);
  s->bind_text(8, r.comment_id);
  return run(s);
}

status session_tables::delete_comment(std::string_view pr_url, std::string_view comment_id) {
  ORDO_PREPARE(s, "DELETE FROM pr_comments WHERE pr_url = ? AND comment_id = ?");
  s->bind_text(1, pr_url);
  s->bind_text(2, comment_id);
  return run(s);
}

// ---- event stream ----------------------------------------------------------------------------

result<std::int64_t> session_tables::stream_tail(std::int64_t stream_id) {
  return sqlite::stream_tail(statements_, stream_id);
}

result<std::int64_t> session_tables::stream_incarnation(std::int64_t stream_id) {
  ORDO_PREPARE(s, "SELECT incarnation FROM streams WHERE id = ?");
  s->bind_int64(1, stream_id);
  auto v = one<std::int64_t>(s, [](const statement& st) { return st.column_int64(0); });
  if (!v) return std::move(v).error();
  return v->value_or(0);
}

#undef ORDO_PREPARE

}  // namespace ordo::sqlite
