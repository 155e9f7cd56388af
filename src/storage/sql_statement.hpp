// The statements of the session tables (storage/sqlite/session_tables.hpp), on either storage:
// SQLite's prepared statements (storage/sqlite/connection.hpp) or PostgreSQL's
// (storage/postgres/sql_statements.hpp, which runs the same SQL text with its `?` parameters
// numbered). The session tables' SQL is written once, in the dialect both engines share.
//
// Thread safety: statements belong to the thread that owns their connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "base/stream_position.hpp"

namespace ordo::storage {

class sql_statement {
 public:
  virtual ~sql_statement() = default;

  // Parameters are numbered from 1.
  virtual void bind_int64(int index, std::int64_t value) = 0;
  virtual void bind_text(int index, std::string_view text) = 0;
  virtual void bind_blob(int index, std::string_view bytes) = 0;
  virtual void bind_null(int index) = 0;
  void bind_optional_int64(int index, const std::optional<std::int64_t>& value) {
    value ? bind_int64(index, *value) : bind_null(index);
  }
  void bind_optional_text(int index, const std::optional<std::string>& value) {
    value ? bind_text(index, *value) : bind_null(index);
  }

  // The next row: true when there is one, false when the statement is done.
  virtual result<bool> step() = 0;
  // Runs a statement that returns no rows.
  virtual status run() = 0;
  // Ready to run again, its bindings cleared.
  virtual void reset() = 0;

  // Columns of the current row, numbered from 0. A text column is valid until the next step().
  virtual std::int64_t column_int64(int index) const = 0;
  virtual std::string_view column_text(int index) const = 0;
  virtual std::string_view column_blob(int index) const = 0;
  virtual bool column_is_null(int index) const = 0;
  std::optional<std::int64_t> column_optional_int64(int index) const {
    if (column_is_null(index)) return std::nullopt;
    return column_int64(index);
  }
  std::optional<std::string> column_optional_text(int index) const {
    if (column_is_null(index)) return std::nullopt;
    return std::string(column_text(index));
  }

 protected:
  sql_statement() = default;
  sql_statement(const sql_statement&) = default;
  sql_statement(sql_statement&&) = default;
  sql_statement& operator=(const sql_statement&) = default;
  sql_statement& operator=(sql_statement&&) = default;
};

// One connection's statements, each SQL text prepared once, and the one answer the session
// tables need that is not plain SQL on both engines.
class sql_connection {
 public:
  virtual ~sql_connection() = default;
  virtual result<sql_statement*> get(std::string_view sql) = 0;
  // The stream's tail as this connection sees it committed (storage/stream_store.hpp).
  virtual result<stream_position> stream_tail(stream_id stream) = 0;

 protected:
  sql_connection() = default;
};

// What a read task of the session service gets (stream_engine::read_with()): a reader
// connection's statements, inside one read-only snapshot that lasts the whole task, and the
// database epoch the snapshot belongs to.
struct read_snapshot {
  sql_connection& sql;
  std::uint64_t database_epoch = 0;
};

// A statement borrowed for one use: reset and its bindings cleared on exit.
class sql_statement_use {
 public:
  explicit sql_statement_use(sql_statement* s) : s_(s) {}
  ~sql_statement_use() {
    if (s_) s_->reset();
  }
  sql_statement_use(const sql_statement_use&) = delete;
  sql_statement_use& operator=(const sql_statement_use&) = delete;
  sql_statement* operator->() { return s_; }
  sql_statement& operator*() { return *s_; }

 private:
  sql_statement* s_;
};

}  // namespace ordo::storage
