// How the session tables' member functions (session_tables*.cpp) run their statements: each
// prepares its SQL once per connection (ORDO_PREPARE, through the statement cache), binds, and
// reads no row or one (one()), every row (all()) or runs it to completion (run()). Every
// statement is reset when done, whatever the outcome, so a failure never leaves one busy.
// Internal to storage/sqlite/.
#pragma once

#include <optional>
#include <utility>
#include <vector>

#include "base/result.hpp"
#include "storage/sqlite/connection.hpp"

namespace ordo::sqlite::session_statements {

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

inline status run(statement* s) {
  statement_use use(s);
  return use->run();
}

}  // namespace ordo::sqlite::session_statements

// In a member of session_tables: prepares `sql` (or returns its failure) as `statement* var`.
#define ORDO_PREPARE(var, sql)                                   \
  auto var##_prepared = prepare(sql);                            \
  if (!var##_prepared) return std::move(var##_prepared).error(); \
  statement* var = *var##_prepared
