// The session tables' statements on PostgreSQL (storage/sql_statement.hpp): the same SQL text as
// on SQLite, its parameters (`?`, or `?N` to name one again) numbered as PostgreSQL's `$N`, bound
// in text format, and run when first stepped. PostgreSQL infers each parameter's type from where
// it is used; BOOLEAN columns read as integers 1 and 0, as SQLite stores them.
//
// Thread safety: belongs to the thread that owns the connection.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/postgres/connection.hpp"
#include "storage/sql_statement.hpp"

namespace ordo::postgres {

// `sql` with SQLite's parameters written as PostgreSQL's: `?` is the next number, `?N` names
// number N (text inside quotes is left alone). SQLite lets a statement skip numbers (a filter
// left out of the text while its number stays); PostgreSQL must know the type of every $N, so
// the numbers used are renumbered densely: `used[k]` is the SQLite number of $k+1.
struct numbered_sql {
  std::string text;
  std::vector<int> used;
};
numbered_sql numbered_parameters(std::string_view sql);

class sql_statements final : public storage::sql_connection {
 public:
  explicit sql_statements(connection& db);
  ~sql_statements() override;
  result<storage::sql_statement*> get(std::string_view sql) override;
  // The stream's counter (storage/postgres/stream_tables.hpp).
  result<stream_position> stream_tail(stream_id stream) override;

 private:
  class statement;
  connection* db_;
  std::unordered_map<std::string, std::unique_ptr<statement>> statements_;
};

}  // namespace ordo::postgres
