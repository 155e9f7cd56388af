// session_tables: executions, the agent's runs within a session (at most one unfinished).
#include "storage/sqlite/session_tables.hpp"

#include "storage/sqlite/session_table_statements.hpp"

namespace ordo::sqlite {

using namespace session_statements;

namespace {

// The columns read_execution() reads, in its order.
constexpr std::string_view k_execution_select =
    "SELECT session_id, generation, started_at_ms, finished_at_ms, finish_reason FROM executions";

result<execution_row> read_execution(const sql_statement& s) {
  execution_row r;
  enum_columns enums(s);
  r.session_id = std::string(s.column_text(0));
  r.generation = s.column_int64(1);
  r.started_at_ms = s.column_int64(2);
  r.finished_at_ms = s.column_optional_int64(3);
  enums.read(4, "executions.finish_reason", r.finish_reason);
  return std::move(enums).checked(std::move(r));
}

}  // namespace

result<std::optional<execution_row>> session_tables::execution(std::string_view session_id,
                                                               std::int64_t generation) {
  ORDO_PREPARE(s, std::string(k_execution_select) + " WHERE session_id = ? AND generation = ?");
  s->bind_text(1, session_id);
  s->bind_int64(2, generation);
  return one<execution_row>(s, read_execution);
}

result<std::optional<execution_row>> session_tables::active_execution(std::string_view session_id) {
  ORDO_PREPARE(
      s, std::string(k_execution_select) + " WHERE session_id = ? AND finished_at_ms IS NULL");
  s->bind_text(1, session_id);
  return one<execution_row>(s, read_execution);
}

result<std::vector<execution_row>> session_tables::executions(std::string_view session_id) {
  ORDO_PREPARE(s, std::string(k_execution_select) + " WHERE session_id = ? ORDER BY generation");
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
                                        std::int64_t finished_at_ms, finish_reason reason) {
  ORDO_PREPARE(s,
               "UPDATE executions SET finished_at_ms = ?, finish_reason = ? "
               "WHERE session_id = ? AND generation = ? AND finished_at_ms IS NULL");
  s->bind_int64(1, finished_at_ms);
  bind_enum(*s, 2, reason);
  s->bind_text(3, session_id);
  s->bind_int64(4, generation);
  return run(s);
}

}  // namespace ordo::sqlite
