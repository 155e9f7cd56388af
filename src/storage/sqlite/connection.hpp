// A thin RAII layer over the SQLite C API: one connection, prepared statements, and the
// translation of SQLite result codes into ordo failures.
//
// Thread safety: a connection and its statements belong to one thread at a time (SQLite is
// built serialized, but ordo never shares a connection: the writer thread owns the write
// connection and each reader thread owns one read-only connection).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/result.hpp"
#include "storage/sql_statement.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace ordo::sqlite {

// Failure codes produced by this layer (failure.code). The writer inspects them: a full disk
// is recoverable, an I/O error during commit is not (see group_commit_writer.hpp).
inline constexpr std::string_view k_storage_full = "storage_full";
inline constexpr std::string_view k_storage_busy = "storage_busy";
inline constexpr std::string_view k_storage_io_error = "storage_io_error";
inline constexpr std::string_view k_storage_corrupt = "storage_corrupt";
inline constexpr std::string_view k_storage_readonly = "storage_readonly";
inline constexpr std::string_view k_storage_error = "storage_error";

// Maps an SQLite result code and message to a failure whose kind tells the caller what to do.
failure storage_failure(int sqlite_code, std::string_view context, std::string_view detail);

class statement final : public storage::sql_statement {
 public:
  statement() = default;
  explicit statement(sqlite3_stmt* stmt) : stmt_(stmt) {}
  statement(statement&& other) noexcept : stmt_(other.stmt_) { other.stmt_ = nullptr; }
  statement& operator=(statement&& other) noexcept;
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;
  ~statement();

  // Parameters are 1-based, as in SQLite.
  void bind_int64(int index, std::int64_t value) override;
  void bind_text(int index, std::string_view text) override;  // SQLITE_TRANSIENT: copied
  void bind_blob(int index, std::string_view bytes) override;
  void bind_null(int index) override;
  void bind_optional_int64(int index, const std::optional<std::int64_t>& value);
  void bind_optional_text(int index, const std::optional<std::string>& value);

  // true: a row is available; false: done.
  result<bool> step() override;
  // Runs a statement that returns no rows to completion.
  status run() override;
  // Resets the statement and clears its bindings so it can be reused.
  void reset() override;

  std::int64_t column_int64(int index) const override;
  std::string_view column_text(int index) const override;
  std::string_view column_blob(int index) const override;
  bool column_is_null(int index) const override;
  std::optional<std::int64_t> column_optional_int64(int index) const;
  std::optional<std::string> column_optional_text(int index) const;

  explicit operator bool() const { return stmt_ != nullptr; }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

// inspect: read-only and leaving no trace for the tools that look at a database. A file no
// process has open in WAL mode (no -wal beside it) is opened immutable, so SQLite creates no
// -wal or -shm file; otherwise it is opened read_only, sharing the running server's WAL.
// immutable: only the main file's bytes, ignoring any -wal or -shm beside it (they may belong
// to another database, as when the file was replaced under a server); for validating a file.
enum class open_mode { read_write_create, read_only, inspect, immutable };

class connection {
 public:
  static result<connection> open(const std::string& path, open_mode mode,
                                 std::chrono::milliseconds busy_timeout);

  connection() = default;
  connection(connection&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  connection& operator=(connection&& other) noexcept;
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;
  ~connection();

  // Runs one or more statements that return no rows.
  status exec(std::string_view sql);
  result<statement> prepare(std::string_view sql);

  // Runs a query expected to return a single integer (e.g. PRAGMA or COUNT); nullopt if no row.
  result<std::optional<std::int64_t>> query_int64(std::string_view sql);
  result<std::optional<std::string>> query_text(std::string_view sql);

  std::int64_t last_insert_rowid() const;
  int changes() const;
  sqlite3* handle() const { return db_; }

 private:
  explicit connection(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// Runs `sql` and calls `row` for each result row.
status for_each_row(connection& db, std::string_view sql,
                    const std::function<void(statement&)>& row);
// Runs the prepared statement `s` (with its parameters bound) to its end, calling `row` for each
// result row, and resets it for its next use whatever the outcome.
status for_each_row(statement& s, const std::function<void(statement&)>& row);

// A read transaction for the scope: everything read through `db` meanwhile is one consistent
// state of the database (in WAL mode, without blocking the writer). Ends with COMMIT.
class read_transaction {
 public:
  static result<read_transaction> begin(connection& db);
  read_transaction(read_transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
  read_transaction(const read_transaction&) = delete;
  read_transaction& operator=(const read_transaction&) = delete;
  read_transaction& operator=(read_transaction&&) = delete;
  ~read_transaction();

 private:
  explicit read_transaction(connection& db) : db_(&db) {}
  connection* db_;
};

// Prepared statements of one connection, prepared on first use and reused. Belongs to the
// connection's thread, like the connection. Callers reset() a statement when done with it
// (statement_use does that).
class statement_cache {
 public:
  explicit statement_cache(connection& db) : db_(db) {}
  result<statement*> get(std::string_view sql);
  connection& db() { return db_; }

 private:
  connection& db_;
  std::unordered_map<std::string, statement> statements_;
};

// A statement borrowed from a cache for one use: reset and its bindings cleared on exit.
class statement_use {
 public:
  explicit statement_use(statement* s) : s_(s) {}
  ~statement_use() {
    if (s_) s_->reset();
  }
  statement_use(const statement_use&) = delete;
  statement_use& operator=(const statement_use&) = delete;
  statement* operator->() { return s_; }
  statement& operator*() { return *s_; }

 private:
  statement* s_;
};

}  // namespace ordo::sqlite
