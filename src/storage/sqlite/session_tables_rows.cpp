// session_tables: rows, a session's transcript (messages, tool calls, approvals) in order.
#include "storage/sqlite/session_tables.hpp"

#include "storage/sqlite/session_table_statements.hpp"

namespace ordo::sqlite {

using namespace session_statements;

namespace {

constexpr std::string_view k_row_columns =
    "session_id, seq, row_id, kind, status, body, revision, request_id, request_body, "
    "created_at_ms, updated_at_ms";

result<transcript_row> read_row(const sql_statement& s) {
  transcript_row r;
  enum_columns enums(s);
  r.session_id = std::string(s.column_text(0));
  r.seq = s.column_int64(1);
  r.row_id = std::string(s.column_text(2));
  enums.read(3, "rows.kind", r.kind);
  enums.read(4, "rows.status", r.status);
  r.body = std::string(s.column_text(5));
  r.revision = s.column_int64(6);
  r.request_id = s.column_optional_text(7);
  r.request_body = s.column_optional_text(8);
  r.created_at_ms = s.column_int64(9);
  r.updated_at_ms = s.column_int64(10);
  return std::move(enums).checked(std::move(r));
}

}  // namespace

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
  bind_enum(*s, 4, r.kind);
  bind_enum(*s, 5, r.status);
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
  bind_enum(*s, 1, r.kind);
  bind_enum(*s, 2, r.status);
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

}  // namespace ordo::sqlite
