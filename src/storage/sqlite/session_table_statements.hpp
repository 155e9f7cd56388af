// How the session tables' member functions (session_tables*.cpp) run their statements: each
// prepares its SQL once per connection (ORDO_PREPARE, through the connection's statements), binds,
// and
// reads no row or one (one()), every row (all()) or runs it to completion (run()). Every
// statement is reset when done, whatever the outcome, so a failure never leaves one busy. The
// statements are storage::sql_statement: SQLite's or PostgreSQL's (storage/sql_statement.hpp).
// Enumerated columns are bound and read through their one mapping (session_enums.hpp): a row
// reader that meets a text naming no value returns the failure instead of the row.
// Internal to storage/sqlite/.
#pragma once

#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "base/enum_names.hpp"
#include "base/result.hpp"
#include "storage/sql_statement.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/session_enums.hpp"

namespace ordo::sqlite::session_statements {

using storage::sql_statement;
using storage::sql_statement_use;

// Stream ids as the session tables' columns hold them.
inline void bind_stream_id(sql_statement& s, int index, stream_id id) {
  s.bind_int64(index, id.value());
}
inline stream_id column_stream_id(const sql_statement& s, int index) {
  return stream_id{s.column_int64(index)};
}

// What a row reader returned, as a result: readers of rows without enumerated columns cannot
// fail and return the row itself.
template <class Row>
result<Row> checked(Row row) {
  return row;
}
template <class Row>
result<Row> checked(result<Row> row) {
  return row;
}

template <class Row, class Reader>
result<std::optional<Row>> one(sql_statement* s, Reader read) {
  sql_statement_use use(s);
  auto row = use->step();
  if (!row) return std::move(row).error();
  if (!*row) return std::optional<Row>();
  result<Row> r = checked<Row>(read(*use));
  if (!r) return std::move(r).error();
  return std::optional<Row>(std::move(*r));
}

template <class Row, class Reader>
result<std::vector<Row>> all(sql_statement* s, Reader read) {
  sql_statement_use use(s);
  std::vector<Row> out;
  for (;;) {
    auto row = use->step();
    if (!row) return std::move(row).error();
    if (!*row) break;
    result<Row> r = checked<Row>(read(*use));
    if (!r) return std::move(r).error();
    out.push_back(std::move(*r));
  }
  return out;
}

inline status run(sql_statement* s) {
  sql_statement_use use(s);
  return use->run();
}

template <named_enum E>
void bind_enum(sql_statement& s, int index, E value) {
  s.bind_text(index, to_string(value));
}
template <named_enum E>
void bind_enum(sql_statement& s, int index, const std::optional<E>& value) {
  if (value) {
    s.bind_text(index, to_string(*value));
  } else {
    s.bind_null(index);
  }
}

// Reads the enumerated columns of one result row; the first text that names no value becomes
// the row's failure (storage_corrupt, stored_enum()).
class enum_columns {
 public:
  explicit enum_columns(const sql_statement& s) : s_(s) {}

  // `column` is "table.column", for the failure's message.
  template <named_enum E>
  void read(int index, std::string_view column, E& into) {
    auto value = stored_enum<E>(column, s_.column_text(index));
    if (value) {
      into = *value;
    } else if (!error_) {
      error_ = std::move(value).error();
    }
  }
  template <named_enum E>
  void read(int index, std::string_view column, std::optional<E>& into) {
    into.reset();
    if (s_.column_is_null(index)) return;
    E value{};
    read(index, column, value);
    into = value;
  }

  // `row`, or the failure of its first unknown text.
  template <class Row>
  result<Row> checked(Row row) && {
    if (error_) return std::move(*error_);
    return row;
  }

 private:
  const sql_statement& s_;
  std::optional<failure> error_;
};

}  // namespace ordo::sqlite::session_statements

// In a member of session_tables: prepares `sql` (or returns its failure) as `sql_statement* var`.
#define ORDO_PREPARE(var, sql)                                   \
  auto var##_prepared = prepare(sql);                            \
  if (!var##_prepared) return std::move(var##_prepared).error(); \
  sql_statement* var = *var##_prepared
