#include "storage/postgres/connection.hpp"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstdlib>

namespace ordo::postgres {

// ---- failures ------------------------------------------------------------------------------

failure storage_failure(std::string_view sqlstate, std::string_view context,
                        std::string_view detail) {
  std::string message = std::string(context) + ": " + std::string(detail);
  if (!sqlstate.empty()) message += " (SQLSTATE " + std::string(sqlstate) + ")";
  const std::string_view cls = sqlstate.substr(0, 2);
  // 08: connection exception; 57P01-57P03: the server is shutting down or starting;
  // 53300: too many connections.
  if (sqlstate.empty() || cls == "08" || sqlstate == "57P01" || sqlstate == "57P02" ||
      sqlstate == "57P03" || sqlstate == "53300") {
    return make_failure(failure_kind::unavailable, std::string(k_storage_unavailable),
                        "PostgreSQL is unreachable or not accepting connections (" + message + ")");
  }
  if (sqlstate == "40001" || sqlstate == "40P01" || sqlstate == "55P03") {
    return make_failure(
        failure_kind::unavailable, std::string(k_storage_busy),
        "PostgreSQL aborted the transaction for a conflict with another one (" + message + ")");
  }
  if (sqlstate == "53100") {
    return make_failure(failure_kind::insufficient_storage, std::string(k_storage_full),
                        "the disk holding the PostgreSQL database is full (" + message + ")");
  }
  if (sqlstate == "25006") {
    return make_failure(failure_kind::unavailable, std::string(k_storage_readonly),
                        "the PostgreSQL connection is read-only (" + message + ")");
  }
  if (cls == "23") {
    return make_failure(failure_kind::internal, std::string(k_storage_constraint), message);
  }
  return make_failure(failure_kind::internal, std::string(k_storage_error), message);
}

// ---- rows ----------------------------------------------------------------------------------

void rows::free_result::operator()(pg_result* r) const {
  PQclear(r);
}

rows::rows(pg_result* result) : result_(result) {}

int rows::size() const {
  return result_ ? PQntuples(result_.get()) : 0;
}

int rows::columns() const {
  return result_ ? PQnfields(result_.get()) : 0;
}

std::string_view rows::column_name(int column) const {
  const char* name = PQfname(result_.get(), column);
  return name ? std::string_view(name) : std::string_view();
}

bool rows::is_null(int row, int column) const {
  return PQgetisnull(result_.get(), row, column) != 0;
}

std::string_view rows::text(int row, int column) const {
  return {PQgetvalue(result_.get(), row, column),
          static_cast<std::size_t>(PQgetlength(result_.get(), row, column))};
}

std::int64_t rows::int64(int row, int column) const {
  std::string_view v = text(row, column);
  std::int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

std::optional<std::int64_t> rows::optional_int64(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return int64(row, column);
}

std::optional<std::string> rows::optional_text(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return std::string(text(row, column));
}

std::string rows::bytes(int row, int column) const {
  // The hex format: "\x", then two digits per byte (bytea_output = hex, the default since 9.0).
  std::string_view v = text(row, column);
  if (v.size() < 2 || v[0] != '\\' || v[1] != 'x') return std::string(v);
  v.remove_prefix(2);
  auto digit = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 0;
  };
  std::string out;
  out.reserve(v.size() / 2);
  for (std::size_t i = 0; i + 1 < v.size(); i += 2)
    out.push_back(static_cast<char>(digit(v[i]) << 4 | digit(v[i + 1])));
  return out;
}

// ---- connection ----------------------------------------------------------------------------

void connection::finish::operator()(pg_conn* c) const {
  PQfinish(c);
}

connection::connection(pg_conn* conn, bool read_only) : conn_(conn), read_only_(read_only) {}

result<connection> connection::open(std::string_view url, const open_options& options) {
  const std::string dbname(url);
  const std::string timeout = std::to_string(options.connect_timeout.count());
  // Ours first: with expand_dbname, settings that come later win, so whatever the URL says (its
  // connect_timeout, application_name or options such as a search_path) is kept.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {timeout.c_str(), options.application_name.c_str(), dbname.c_str(),
                          nullptr};
  pg_conn* raw = PQconnectdbParams(keys, values, 1);
  std::unique_ptr<pg_conn, finish> conn(raw);
  const std::string description = redacted(url);
  if (!conn) {
    return make_failure(failure_kind::unavailable, std::string(k_storage_unavailable),
                        "cannot connect to " + description + ": out of memory");
  }
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    std::string detail = PQerrorMessage(conn.get());
    while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' '))
      detail.pop_back();
    return storage_failure("", "cannot connect to " + description, detail);
  }
  // The server's notices (NOTICE: relation ... already exists, skipping) go to the debug log,
  // not to stderr.
  PQsetNoticeProcessor(
      conn.get(),
      [](void*, const char* message) {
        std::string_view m(message);
        while (!m.empty() && m.back() == '\n')
          m.remove_suffix(1);
        spdlog::debug("PostgreSQL: {}", m);
      },
      nullptr);
  connection c(conn.release(), options.read_only);
  // Every transaction read-only from here on, whatever the URL's options set.
  if (options.read_only) {
    if (auto s = c.exec("SET default_transaction_read_only = on"); !s) return s.error();
  }
  return c;
}

int connection::server_version() const {
  return PQserverVersion(conn_.get());
}

failure connection::last_failure(pg_result* result, std::string_view context) const {
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string detail = result ? PQresultErrorMessage(result) : "";
  if (detail.empty()) detail = PQerrorMessage(conn_.get());
  while (!detail.empty() && (detail.back() == '\n' || detail.back() == ' '))
    detail.pop_back();
  // A broken connection has no SQLSTATE: storage_failure() makes that storage_unavailable.
  if (PQstatus(conn_.get()) == CONNECTION_BAD) state = nullptr;
  return storage_failure(state ? state : "", context, detail);
}

status connection::exec(std::string_view sql) {
  const std::string text(sql);
  std::unique_ptr<pg_result, rows::free_result> result(PQexec(conn_.get(), text.c_str()));
  ExecStatusType st = result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) return ok_v;
  return last_failure(result.get(), "PostgreSQL statement failed");
}

status connection::commit() {
  status s = exec("COMMIT");
  if (s || PQstatus(conn_.get()) != CONNECTION_BAD) return s;
  return make_failure(failure_kind::unavailable, std::string(k_commit_unknown),
                      "the connection to PostgreSQL was lost during COMMIT, so whether the "
                      "transaction committed is unknown (" +
                          s.error().message + ")");
}

result<rows> connection::query(std::string_view sql, const std::vector<param>& params) {
  const std::string text(sql);
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  values.reserve(params.size());
  lengths.reserve(params.size());
  formats.reserve(params.size());
  for (const param& p : params) {
    values.push_back(p.value ? p.value->data() : nullptr);
    lengths.push_back(p.value ? static_cast<int>(p.value->size()) : 0);
    formats.push_back(p.binary ? 1 : 0);
  }
  pg_result* raw = PQexecParams(conn_.get(), text.c_str(), static_cast<int>(params.size()), nullptr,
                                values.data(), lengths.data(), formats.data(), 0);
  rows out(raw);
  ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return out;
  return last_failure(raw, "PostgreSQL query failed");
}

result<std::optional<std::int64_t>> connection::query_int64(std::string_view sql,
                                                            const std::vector<param>& params) {
  auto r = query(sql, params);
  if (!r) return std::move(r).error();
  if (r->size() == 0 || r->columns() == 0) return std::optional<std::int64_t>();
  return r->optional_int64(0, 0);
}

bool connection::lost() const {
  return PQstatus(conn_.get()) == CONNECTION_BAD;
}

int connection::socket() const {
  return PQsocket(conn_.get());
}

status connection::consume_input() {
  if (PQconsumeInput(conn_.get()) == 1) return ok_v;
  return last_failure(nullptr, "reading from PostgreSQL failed");
}

std::vector<connection::notification> connection::take_notifications() {
  std::vector<notification> out;
  while (PGnotify* n = PQnotifies(conn_.get())) {
    out.push_back({n->relname ? n->relname : "", n->extra ? n->extra : ""});
    PQfreemem(n);
  }
  return out;
}

std::string quoted_identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// ---- URLs ----------------------------------------------------------------------------------

bool is_postgres_url(std::string_view url) {
  return url.starts_with("postgres://") || url.starts_with("postgresql://");
}

std::string redacted(std::string_view url) {
  std::string out(url);
  if (std::size_t scheme = out.find("://"); scheme != std::string::npos) {
    // scheme://user:password@host... (any scheme: a URL given by mistake hides its password
    // too): the password is between the first ':' after the scheme and the last '@' of the
    // authority.
    std::size_t start = scheme + 3;
    std::size_t authority_end = out.find_first_of("/?", start);
    if (authority_end == std::string::npos) authority_end = out.size();
    std::size_t at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= start) {
      std::size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // password=... in a query string or a key=value string.
  for (std::size_t p = out.find("password="); p != std::string::npos;
       p = out.find("password=", p + 1)) {
    std::size_t value = p + 9;
    std::size_t end = out.find_first_of("& ", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
  }
  return out;
}

}  // namespace ordo::postgres
