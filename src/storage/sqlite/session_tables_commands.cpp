// session_tables: commands, what clients ask a session's agent to do, with their status.
#include "storage/sqlite/session_tables.hpp"

#include "storage/sqlite/session_table_statements.hpp"

namespace ordo::sqlite {

using namespace session_statements;

namespace {

constexpr std::string_view k_command_columns =
    "session_id, seq, request_id, body, status, result, created_at_ms, updated_at_ms";

result<command_row> read_command(const sql_statement& s) {
  command_row r;
  enum_columns enums(s);
  r.session_id = std::string(s.column_text(0));
  r.seq = s.column_int64(1);
  r.request_id = std::string(s.column_text(2));
  r.body = std::string(s.column_text(3));
  enums.read(4, "commands.status", r.status);
  r.result = s.column_optional_text(5);
  r.created_at_ms = s.column_int64(6);
  r.updated_at_ms = s.column_int64(7);
  return std::move(enums).checked(std::move(r));
}

}  // namespace

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
  bind_enum(*s, 5, r.status);
  s->bind_optional_text(6, r.result);
  s->bind_int64(7, r.created_at_ms);
  s->bind_int64(8, r.updated_at_ms);
  return run(s);
}

status session_tables::update_command_status(std::string_view session_id, std::int64_t seq,
                                             command_status status,
                                             const std::optional<std::string>& result,
                                             std::int64_t updated_at_ms) {
  ORDO_PREPARE(s,
               "UPDATE commands SET status = ?, result = COALESCE(?, result), updated_at_ms = ? "
               "WHERE session_id = ? AND seq = ?");
  bind_enum(*s, 1, status);
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

}  // namespace ordo::sqlite
