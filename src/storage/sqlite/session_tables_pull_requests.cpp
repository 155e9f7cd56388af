// session_tables: pull requests, their CI checks per commit and their comment sets.
#include "storage/sqlite/session_tables.hpp"

#include "storage/sqlite/session_table_statements.hpp"

namespace ordo::sqlite {

using namespace session_statements;

namespace {

constexpr std::string_view k_pr_columns =
    "url, session_id, number, title, state, review_decision, mergeability, ci_state, "
    "head_commit, revision, next_check_seq, created_at_ms, updated_at_ms";

result<pr_row> read_pr(const sql_statement& s) {
  pr_row r;
  enum_columns enums(s);
  r.url = std::string(s.column_text(0));
  r.session_id = std::string(s.column_text(1));
  r.number = s.column_optional_int64(2);
  r.title = s.column_optional_text(3);
  enums.read(4, "prs.state", r.state);
  enums.read(5, "prs.review_decision", r.review_decision);
  enums.read(6, "prs.mergeability", r.mergeability);
  enums.read(7, "prs.ci_state", r.ci_state);
  r.head_commit = s.column_optional_text(8);
  r.revision = s.column_int64(9);
  r.next_check_seq = s.column_int64(10);
  r.created_at_ms = s.column_int64(11);
  r.updated_at_ms = s.column_int64(12);
  return std::move(enums).checked(std::move(r));
}

constexpr std::string_view k_check_columns =
    "pr_url, name, commit_sha, seq, status, url, started_at_ms, completed_at_ms, created_at_ms, "
    "updated_at_ms";

result<check_row> read_check(const sql_statement& s) {
  check_row r;
  enum_columns enums(s);
  r.pr_url = std::string(s.column_text(0));
  r.name = std::string(s.column_text(1));
  r.commit_sha = std::string(s.column_text(2));
  r.seq = s.column_int64(3);
  enums.read(4, "pr_checks.status", r.status);
  r.url = s.column_optional_text(5);
  r.started_at_ms = s.column_optional_int64(6);
  r.completed_at_ms = s.column_optional_int64(7);
  r.created_at_ms = s.column_int64(8);
  r.updated_at_ms = s.column_int64(9);
  return std::move(enums).checked(std::move(r));
}

constexpr std::string_view k_comment_columns =
    "pr_url, comment_id, author, body, path, line, resolved, created_at_ms, updated_at_ms";

comment_row read_comment(const sql_statement& s) {
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
  bind_enum(*s, 5, r.state);
  bind_enum(*s, 6, r.review_decision);
  bind_enum(*s, 7, r.mergeability);
  bind_enum(*s, 8, r.ci_state);
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
  bind_enum(*s, 3, r.state);
  bind_enum(*s, 4, r.review_decision);
  bind_enum(*s, 5, r.mergeability);
  bind_enum(*s, 6, r.ci_state);
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
  bind_enum(*s, 5, r.status);
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
  bind_enum(*s, 1, r.status);
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

}  // namespace ordo::sqlite
