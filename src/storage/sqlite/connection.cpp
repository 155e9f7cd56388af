#include "storage/sqlite/connection.hpp"

#include <sqlite3.h>

#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>

namespace ordo::sqlite {

failure storage_failure(int sqlite_code, std::string_view context, std::string_view detail) {
  std::string message = std::string(context) + ": " + std::string(detail);
  switch (sqlite_code & 0xff) {
    case SQLITE_FULL:
      return make_failure(failure_kind::insufficient_storage, std::string(k_storage_full),
                          "the disk holding the database is full (" + message + ")");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return make_failure(
          failure_kind::unavailable, std::string(k_storage_busy),
          "the database is locked by another process (a sqlite3 shell or another tool "
          "holding a write transaction) and stayed locked for the whole --busy-timeout (" +
              message + ")");
    case SQLITE_IOERR:
      return make_failure(failure_kind::unavailable, std::string(k_storage_io_error),
                          "the database file could not be read or written (" + message + ")");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return make_failure(failure_kind::internal, std::string(k_storage_corrupt),
                          "the database file is damaged (" + message + ")");
    case SQLITE_READONLY:
      return make_failure(failure_kind::unavailable, std::string(k_storage_readonly),
                          "the database is read-only (" + message + ")");
    default:
      return make_failure(failure_kind::internal, std::string(k_storage_error), message);
  }
}

namespace {

failure connection_failure(sqlite3* db, int code, std::string_view context) {
  return storage_failure(code, context, db ? sqlite3_errmsg(db) : sqlite3_errstr(code));
}

}  // namespace

// ---- statement -------------------------------------------------------------------------------

statement& statement::operator=(statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

statement::~statement() {
  sqlite3_finalize(stmt_);
}

void statement::bind_int64(int index, std::int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
}

void statement::bind_text(int index, std::string_view text) {
  sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void statement::bind_blob(int index, std::string_view bytes) {
  // A zero-length blob must still bind as a blob, not NULL: pass a non-null pointer.
  static const char empty = 0;
  sqlite3_bind_blob64(stmt_, index, bytes.empty() ? &empty : bytes.data(), bytes.size(),
                      SQLITE_TRANSIENT);
}

void statement::bind_null(int index) {
  sqlite3_bind_null(stmt_, index);
}

void statement::bind_optional_int64(int index, const std::optional<std::int64_t>& value) {
  if (value) {
    bind_int64(index, *value);
  } else {
    bind_null(index);
  }
}

void statement::bind_optional_text(int index, const std::optional<std::string>& value) {
  if (value) {
    bind_text(index, *value);
  } else {
    bind_null(index);
  }
}

result<bool> statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  sqlite3* db = sqlite3_db_handle(stmt_);
  return connection_failure(db, rc, sqlite3_sql(stmt_));
}

status statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return std::move(r).error();
    if (!*r) return ok_v;
  }
}

void statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t statement::column_int64(int index) const {
  return sqlite3_column_int64(stmt_, index);
}

std::string_view statement::column_text(int index) const {
  const auto* p = sqlite3_column_text(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string_view(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n))
           : std::string_view();
}

std::string_view statement::column_blob(int index) const {
  const void* p = sqlite3_column_blob(stmt_, index);
  int n = sqlite3_column_bytes(stmt_, index);
  return p ? std::string_view(static_cast<const char*>(p), static_cast<std::size_t>(n))
           : std::string_view();
}

bool statement::column_is_null(int index) const {
  return sqlite3_column_type(stmt_, index) == SQLITE_NULL;
}

std::optional<std::int64_t> statement::column_optional_int64(int index) const {
  if (column_is_null(index)) return std::nullopt;
  return column_int64(index);
}

std::optional<std::string> statement::column_optional_text(int index) const {
  if (column_is_null(index)) return std::nullopt;
  return std::string(column_text(index));
}

// ---- connection ------------------------------------------------------------------------------

namespace {

// A file path as the path part of an SQLite URI: everything but unreserved characters and '/'
// percent-encoded.
std::string uri_path(std::string_view path) {
  static constexpr char k_hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += k_hex[c >> 4];
      out += k_hex[c & 15];
    }
  }
  return out;
}

// Whether the database file's header says WAL (its read and write versions are 2).
bool in_wal_mode(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[20] = {};
  if (!in.read(header, sizeof header)) return false;
  return header[18] == 2 && header[19] == 2;
}

}  // namespace

result<connection> connection::open(const std::string& path, open_mode mode,
                                    std::chrono::milliseconds busy_timeout) {
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  flags |= mode == open_mode::read_write_create ? (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)
                                                : SQLITE_OPEN_READONLY;
  std::string name = path;
  std::error_code ec;
  if (mode == open_mode::inspect || mode == open_mode::immutable) {
    if (!std::filesystem::exists(path, ec)) {
      return make_failure(failure_kind::not_found, "database_not_found",
                          "no database at '" + path + "'");
    }
    // A WAL database with no -wal file is open nowhere (a server keeps its -wal while it
    // runs), so it cannot change under us. A rollback-journal database shows no such sign:
    // it is read with ordinary shared locks.
    if (mode == open_mode::immutable ||
        (in_wal_mode(path) && !std::filesystem::exists(path + "-wal", ec))) {
      name = "file:" + uri_path(path) + "?immutable=1";
    }
  }
  // Before SQLite's first use: no memory statistics, whose global mutex every allocation of
  // every connection would take (ordo reads none of them).
  static std::once_flag configured;
  std::call_once(configured, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(name.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    failure f = connection_failure(db, rc, "opening database '" + path + "'");
    sqlite3_close_v2(db);
    return f;
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(busy_timeout.count()));
  return connection(db);
}

connection& connection::operator=(connection&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

connection::~connection() {
  sqlite3_close_v2(db_);
}

status connection::exec(std::string_view sql) {
  std::string text(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string detail = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return storage_failure(rc, text.size() > 80 ? text.substr(0, 80) + "..." : text, detail);
  }
  return ok_v;
}

result<statement> connection::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return connection_failure(db_, rc, sql);
  return statement(stmt);
}

result<std::optional<std::int64_t>> connection::query_int64(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return std::move(stmt).error();
  auto row = stmt->step();
  if (!row) return std::move(row).error();
  if (!*row || stmt->column_is_null(0)) return std::optional<std::int64_t>();
  return std::optional<std::int64_t>(stmt->column_int64(0));
}

result<std::optional<std::string>> connection::query_text(std::string_view sql) {
  auto stmt = prepare(sql);
  if (!stmt) return std::move(stmt).error();
  auto row = stmt->step();
  if (!row) return std::move(row).error();
  if (!*row || stmt->column_is_null(0)) return std::optional<std::string>();
  return std::optional<std::string>(std::string(stmt->column_text(0)));
}

std::int64_t connection::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(db_);
}

int connection::changes() const {
  return sqlite3_changes(db_);
}

result<statement*> statement_cache::get(std::string_view sql) {
  auto it = statements_.find(std::string(sql));
  if (it != statements_.end()) return &it->second;
  auto prepared = db_.prepare(sql);
  if (!prepared) return std::move(prepared).error();
  auto [inserted, ok] = statements_.emplace(std::string(sql), std::move(*prepared));
  return &inserted->second;
}

// ---- helpers -----------------------------------------------------------------------------------

status for_each_row(connection& db, std::string_view sql,
                    const std::function<void(statement&)>& row) {
  auto st = db.prepare(sql);
  if (!st) return std::move(st).error();
  return for_each_row(*st, row);
}

status for_each_row(statement& s, const std::function<void(statement&)>& row) {
  for (;;) {
    auto more = s.step();
    if (!more || !*more) {
      s.reset();
      if (!more) return std::move(more).error();
      return ok_v;
    }
    row(s);
  }
}

result<read_transaction> read_transaction::begin(connection& db) {
  if (auto s = db.exec("BEGIN"); !s) return std::move(s).error();
  return read_transaction(db);
}

read_transaction::~read_transaction() {
  if (db_) (void)db_->exec("COMMIT");
}

}  // namespace ordo::sqlite
