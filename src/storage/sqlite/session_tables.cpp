// session_tables: projects, sessions (with their derived state, filters and counts) and the
// reads of a session's event stream. The other entities are in session_tables_executions.cpp,
// session_tables_commands.cpp, session_tables_rows.cpp and session_tables_pull_requests.cpp.
#include "storage/sqlite/session_tables.hpp"

#include "storage/sqlite/session_table_statements.hpp"
#include "storage/sqlite/stream_tables.hpp"

namespace ordo::sqlite {

using namespace session_statements;

result<storage::sql_statement*> statement_cache_sql::get(std::string_view sql) {
  auto s = cache_.get(sql);
  if (!s) return std::move(s).error();
  return static_cast<storage::sql_statement*>(*s);
}

result<stream_position> statement_cache_sql::stream_tail(stream_id stream) {
  return sqlite::stream_tail(cache_, stream);
}

namespace {

constexpr std::string_view k_project_columns =
    "id, name, repo_path, origin_url, description, created_at_ms, updated_at_ms, "
    "archived_at_ms, revision, next_session_number";

project_row read_project(const sql_statement& s) {
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
  r.next_session_number = session_number{s.column_int64(9)};
  return r;
}

// The derived client state, as SQL over one session row `s`. The quoted texts are those of
// session_enums.hpp, written out like the condition of the partial index rows_awaiting_action,
// which this lookup is meant to use.
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

result<session_row> read_session(const sql_statement& s) {
  session_row r;
  enum_columns enums(s);
  r.seq = s.column_int64(0);
  r.id = std::string(s.column_text(1));
  r.project_id = std::string(s.column_text(2));
  r.number = session_number{s.column_int64(3)};
  enums.read(4, "sessions.state", r.state);
  enums.read(5, "sessions.end_reason", r.end_reason);
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
  r.events_stream_id = column_stream_id(s, 17);
  r.next_row_seq = s.column_int64(18);
  r.next_command_seq = s.column_int64(19);
  r.next_generation = s.column_int64(20);
  r.active_generation = s.column_optional_int64(21);
  r.active_started_at_ms = s.column_optional_int64(22);
  r.awaiting_approval = s.column_int64(23) != 0;
  return std::move(enums).checked(std::move(r));
}

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
  s->bind_int64(10, r.next_session_number.value());
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
  s->bind_int64(8, r.next_session_number.value());
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
  s->bind_int64(3, r.number.value());
  bind_enum(*s, 4, r.state);
  bind_enum(*s, 5, r.end_reason);
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
  bind_stream_id(*s, 17, r.events_stream_id);
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
  bind_enum(*s, 1, r.state);
  bind_enum(*s, 2, r.end_reason);
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
    // sessions/lifecycle.hpp's derive_client_state(), and an ended session is idle (session_json).
    sql += " AND (CASE WHEN s.state = 'ended' THEN 'idle' WHEN " +
           std::string(k_awaiting_approval) + " THEN 'requires_action' WHEN " +
           std::string(k_active_generation) + " IS NOT NULL THEN 'running' ELSE 'idle' END) = ?3";
  }
  if (f.before_seq) sql += " AND s.seq < ?4";
  sql += " ORDER BY s.seq DESC LIMIT ?5";
  ORDO_PREPARE(s, sql);
  if (f.project_id) s->bind_text(1, *f.project_id);
  if (f.state) bind_enum(*s, 2, *f.state);
  if (f.client_state) bind_enum(*s, 3, *f.client_state);
  if (f.before_seq) s->bind_int64(4, *f.before_seq);
  s->bind_int64(5, f.limit);
  return all<session_row>(s, read_session);
}

result<std::vector<session_row>> session_tables::live_sessions() {
  ORDO_PREPARE(s, session_select() + " WHERE s.state <> 'ended' ORDER BY s.seq");
  return all<session_row>(s, read_session);
}

result<std::optional<stream_id>> session_tables::stream_by_path(std::string_view path) {
  ORDO_PREPARE(s, "SELECT id FROM streams WHERE path = ? AND state = 0");
  s->bind_text(1, path);
  return one<stream_id>(s, [](const sql_statement& st) { return column_stream_id(st, 0); });
}

namespace {

// (value, count) rows of a GROUP BY over the enumerated column `column`.
template <named_enum E>
result<std::vector<std::pair<E, std::int64_t>>> counts(sql_statement* s, std::string_view column) {
  return all<std::pair<E, std::int64_t>>(
      s, [column](const sql_statement& st) -> result<std::pair<E, std::int64_t>> {
        auto value = stored_enum<E>(column, st.column_text(0));
        if (!value) return std::move(value).error();
        return std::pair{*value, st.column_int64(1)};
      });
}

}  // namespace

result<std::vector<std::pair<session_state, std::int64_t>>> session_tables::sessions_by_state() {
  ORDO_PREPARE(s, "SELECT state, COUNT(*) FROM sessions GROUP BY state");
  return counts<session_state>(s, "sessions.state");
}

result<std::vector<std::pair<command_status, std::int64_t>>> session_tables::commands_by_status() {
  ORDO_PREPARE(s, "SELECT status, COUNT(*) FROM commands GROUP BY status");
  return counts<command_status>(s, "commands.status");
}

result<std::vector<std::string>> session_tables::sessions_with_heartbeat_before(
    const std::vector<session_state>& states, std::int64_t before_ms) {
  std::string sql = "SELECT id FROM sessions WHERE state IN (";
  for (std::size_t i = 0; i < states.size(); ++i)
    sql += i ? ", ?" : "?";
  sql += ") AND COALESCE(last_heartbeat_ms, created_at_ms) < ? ORDER BY seq";
  ORDO_PREPARE(s, sql);
  int i = 1;
  for (session_state state : states)
    bind_enum(*s, i++, state);
  s->bind_int64(i, before_ms);
  return all<std::string>(s,
                          [](const sql_statement& st) { return std::string(st.column_text(0)); });
}

// ---- event stream ----------------------------------------------------------------------------

result<stream_position> session_tables::stream_tail(stream_id stream) {
  return sql_->stream_tail(stream);
}

result<std::int64_t> session_tables::stream_incarnation(stream_id stream) {
  ORDO_PREPARE(s, "SELECT incarnation FROM streams WHERE id = ?");
  bind_stream_id(*s, 1, stream);
  auto v = one<std::int64_t>(s, [](const sql_statement& st) { return st.column_int64(0); });
  if (!v) return std::move(v).error();
  return v->value_or(0);
}

}  // namespace ordo::sqlite
