// A thin RAII layer over libpq (PostgreSQL's C client): one connection, queries with text
// parameters, results, and the translation of PostgreSQL's SQLSTATE codes into ordo failures.
//
// Raw libpq rather than libpqxx: Debian's libpqxx 6.4 is blocking, predates libpq's pipeline mode
// and cannot pipeline prepared statements, and its newer versions are not packaged here
// (../shared/reference/postgres-research.md, section 3). What ordo needs from it is this small.
//
// Thread safety: a connection and its results belong to one thread at a time (libpq connections
// are not safe to share; results are plain values once read).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

struct pg_conn;
struct pg_result;

namespace ordo::postgres {

// Failure codes produced by this layer (failure.code), named as SQLite's are
// (storage/sqlite/connection.hpp) so that callers above the storage layer treat both alike.
inline constexpr std::string_view k_storage_unavailable = "storage_unavailable";
inline constexpr std::string_view k_storage_busy = "storage_busy";
inline constexpr std::string_view k_storage_full = "storage_full";
inline constexpr std::string_view k_storage_readonly = "storage_readonly";
inline constexpr std::string_view k_storage_constraint = "storage_constraint";
inline constexpr std::string_view k_storage_error = "storage_error";
// The connection was lost while COMMIT was under way: the transaction may or may not have
// committed. Never acknowledged as written; an idempotent producer's retry finds out which.
inline constexpr std::string_view k_commit_unknown = "storage_commit_unknown";

// A query parameter: text (PostgreSQL's text format), bytes (for a BYTEA, sent as they are), or
// NULL.
struct param {
  std::optional<std::string> value;  // nullopt: NULL
  bool binary = false;
  param() = default;
  param(std::nullopt_t) {}
  param(std::string text) : value(std::move(text)) {}
  param(const char* text) : value(std::string(text)) {}
  param(std::optional<std::string> text) : value(std::move(text)) {}
  static param bytes(std::string_view data) {
    param p(std::string{data});
    p.binary = true;
    return p;
  }
  static param integer(std::int64_t v) { return param(std::to_string(v)); }
};

// The rows a query answered (a PGresult), read as text.
class rows {
 public:
  rows() = default;
  explicit rows(pg_result* result);
  rows(rows&&) noexcept = default;
  rows& operator=(rows&&) noexcept = default;

  int size() const;
  int columns() const;
  std::string_view column_name(int column) const;
  bool is_null(int row, int column) const;
  std::string_view text(int row, int column) const;
  // The value as an integer; 0 for NULL (check is_null() or use optional_int64()).
  std::int64_t int64(int row, int column) const;
  std::optional<std::int64_t> optional_int64(int row, int column) const;
  std::optional<std::string> optional_text(int row, int column) const;
  // A BYTEA column (text format, hex-encoded by the server) as its bytes.
  std::string bytes(int row, int column) const;

  struct free_result {
    void operator()(pg_result* r) const;
  };

 private:
  std::unique_ptr<pg_result, free_result> result_;
};

struct open_options {
  // Every transaction of the connection is read-only (default_transaction_read_only), as for
  // `ordo doctor` and `inspect`: a write is refused by the server with storage_readonly.
  bool read_only = false;
  // How long connecting may take before it fails with storage_unavailable.
  std::chrono::seconds connect_timeout{5};
  // Shown in pg_stat_activity.application_name.
  std::string application_name = "ordo";
};

class connection {
 public:
  // Connects to `url`, a libpq connection URI (postgres://user:password@host:port/db?...) or
  // key=value string. Failures name the URL with its password hidden (redacted()).
  static result<connection> open(std::string_view url, const open_options& options = {});

  connection(connection&&) noexcept = default;
  connection& operator=(connection&&) noexcept = default;
  ~connection() = default;

  // Runs one or more statements without parameters, discarding any rows (DDL, BEGIN, COMMIT).
  status exec(std::string_view sql);
  // Commits the open transaction. A connection lost on the way is k_commit_unknown, not
  // storage_unavailable: the server may have committed before the connection went.
  status commit();
  // Runs one statement with `params` bound to $1, $2, ... in text format.
  result<rows> query(std::string_view sql, const std::vector<param>& params = {});
  // The first column of the first row, or nullopt when there is no row or it is NULL.
  result<std::optional<std::int64_t>> query_int64(std::string_view sql,
                                                  const std::vector<param>& params = {});

  // LISTEN's side (storage/postgres/notifier.hpp): the connection's socket, to wait on; reading
  // what arrived on it without blocking (storage_unavailable once the connection is lost); and
  // the notifications read so far.
  struct notification {
    std::string channel;
    std::string payload;
  };
  int socket() const;
  status consume_input();
  std::vector<notification> take_notifications();

  bool read_only() const { return read_only_; }
  // Whether the connection is broken (every later call fails with storage_unavailable).
  bool lost() const;
  // The server's version as a number, e.g. 150018 for 15.18.
  int server_version() const;

 private:
  struct finish {
    void operator()(pg_conn* c) const;
  };
  connection(pg_conn* conn, bool read_only);
  // The failure of the last command (or of the connection itself, if it broke).
  failure last_failure(pg_result* result, std::string_view context) const;

  std::unique_ptr<pg_conn, finish> conn_;
  bool read_only_ = false;
};

// `name` as an SQL identifier, double-quoted (for LISTEN, which takes no parameter).
std::string quoted_identifier(std::string_view name);

// `url` with any password replaced by "***", for logs and error messages.
std::string redacted(std::string_view url);

// Whether `url` names a PostgreSQL database (postgres:// or postgresql://), as --storage takes it.
bool is_postgres_url(std::string_view url);

// Maps a SQLSTATE (and the server's message) to a failure whose kind tells the caller what to do:
// a lost connection or a server shutting down is storage_unavailable (retry), a serialization
// failure or deadlock storage_busy (retry), a full disk storage_full, a write in a read-only
// transaction storage_readonly, a violated constraint storage_constraint.
failure storage_failure(std::string_view sqlstate, std::string_view context,
                        std::string_view detail);

}  // namespace ordo::postgres
