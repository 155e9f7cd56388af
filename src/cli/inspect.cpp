#include "cli/inspect.hpp"

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>

#include "storage/postgres/connection.hpp"
#include "storage/postgres/migrations.hpp"
#include "storage/sqlite/connection.hpp"
#include "storage/sqlite/managed_streams.hpp"
#include "storage/sqlite/migrations.hpp"

namespace ordo::cli {
namespace {

namespace json = boost::json;
namespace sq = ordo::sqlite;
namespace pg = ordo::postgres;

std::int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  auto n = std::filesystem::file_size(path, ec);
  return ec ? 0 : static_cast<std::int64_t>(n);
}

std::int64_t int_of(sq::connection& db, const std::string& sql) {
  auto v = db.query_int64(sql);
  return v && *v ? **v : 0;
}

result<json::object> report(sq::connection& db, const inspect_flags& f, const std::string& path) {
  json::object out;
  out["path"] = path;
  auto version = sq::current_schema_version(db);
  if (!version) return std::move(version).error();
  out["schema_version"] = *version;
  out["schema_version_of_this_ordo"] = sq::latest_schema_version();
  if (*version == 0) return out;
  // One read transaction: every number below describes the same moment.
  auto read = sq::read_transaction::begin(db);
  if (!read) return std::move(read).error();

  auto epoch = db.query_text("SELECT value FROM meta WHERE key = 'database_epoch'");
  if (!epoch) return std::move(epoch).error();
  out["database_epoch"] = epoch->has_value() ? json::value(**epoch) : json::value(nullptr);
  out["files"] = {{"database_bytes", file_bytes(path)}, {"wal_bytes", file_bytes(path + "-wal")}};
  out["pages"] = {{"page_size", int_of(db, "PRAGMA page_size")},
                  {"page_count", int_of(db, "PRAGMA page_count")},
                  {"free_pages", int_of(db, "PRAGMA freelist_count")}};

  json::object streams;
  streams["live"] = int_of(db,
                           "SELECT COUNT(*) FROM streams WHERE state = 0 AND path NOT LIKE "
                           "'\\_\\_%' ESCAPE '\\'");
  streams["managed"] = int_of(
      db, "SELECT COUNT(*) FROM streams WHERE state = 0 AND path LIKE '\\_\\_%' ESCAPE '\\'");
  streams["soft_deleted"] = int_of(db, "SELECT COUNT(*) FROM streams WHERE state = 1");
  streams["purging"] = int_of(db, "SELECT COUNT(*) FROM streams WHERE state = 2");
  // Since schema 4 a message is in `messages` or, until the writer moves it, the append log.
  const std::string all_messages = *version >= 4
                                       ? "(SELECT stream_id, seq, data FROM messages UNION ALL "
                                         "SELECT stream_id, seq, data FROM recent_messages)"
                                       : "messages";
  streams["appends"] = int_of(db, "SELECT COUNT(*) FROM " + all_messages);
  streams["payload_bytes"] =
      int_of(db, "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM " + all_messages);
  out["streams"] = std::move(streams);

  json::array largest;
  auto s = sq::for_each_row(
      db,
      "SELECT s.path, s.content_type, s.closed, COUNT(m.seq), COALESCE(SUM(LENGTH(m.data)), 0) "
      "FROM streams s LEFT JOIN " +
          all_messages +
          " m ON m.stream_id = s.id WHERE s.state = 0 "
          "GROUP BY s.id ORDER BY 5 DESC, s.path LIMIT " +
          std::to_string(f.top),
      [&](sq::statement& r) {
        largest.push_back({{"path", r.column_text(0)},
                           {"content_type", r.column_text(1)},
                           {"closed", r.column_int64(2) != 0},
                           {"appends", r.column_int64(3)},
                           {"payload_bytes", r.column_int64(4)}});
      });
  if (!s) return std::move(s).error();
  out["largest_streams"] = std::move(largest);

  if (*version >= 2) {
    out["projects"] = {
        {"live", int_of(db, "SELECT COUNT(*) FROM projects WHERE archived_at_ms IS NULL")},
        {"archived", int_of(db, "SELECT COUNT(*) FROM projects WHERE archived_at_ms IS NOT NULL")}};
    json::object by_state;
    std::int64_t total = 0;
    s = sq::for_each_row(db, "SELECT state, COUNT(*) FROM sessions GROUP BY state ORDER BY state",
                         [&](sq::statement& r) {
                           by_state[r.column_text(0)] = r.column_int64(1);
                           total += r.column_int64(1);
                         });
    if (!s) return std::move(s).error();
    out["sessions"] = {{"total", total}, {"by_state", std::move(by_state)}};
  }
  if (*version >= 3) {
    json::object feed{{"exists", false}};
    s = sq::for_each_row(
        db,
        "SELECT s.pruned_upto, COUNT(m.seq), MAX(m.seq) FROM streams s LEFT JOIN " + all_messages +
            " m ON m.stream_id = s.id WHERE s.path = '" + std::string(sq::k_change_feed_path) +
            "' GROUP BY s.id",
        [&](sq::statement& r) {
          feed["exists"] = true;
          feed["pruned_upto"] = r.column_int64(0);
          feed["appends"] = r.column_int64(1);
          feed["tail"] = r.column_is_null(2) ? r.column_int64(0) : r.column_int64(2);
        });
    if (!s) return std::move(s).error();
    out["change_feed"] = std::move(feed);
    out["pull_requests"] = int_of(db, "SELECT COUNT(*) FROM prs");
  }
  return out;
}

// The same report for a PostgreSQL database: its size instead of files and pages.
result<json::object> report_postgres(pg::connection& db, const inspect_flags& f,
                                     const std::string& where) {
  json::object out;
  out["path"] = where;
  out["storage"] = "postgresql";
  // One snapshot: every number below describes the same moment.
  if (auto s = db.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !s) return s.error();
  auto fill = [&]() -> status {
    auto version = pg::current_schema_version(db);
    if (!version) return std::move(version).error();
    out["schema_version"] = *version;
    out["schema_version_of_this_ordo"] = pg::latest_schema_version();
    if (*version == 0) return ok_v;
    auto value = [&](const std::string& sql) -> result<std::int64_t> {
      auto v = db.query_int64(sql);
      if (!v) return std::move(v).error();
      return v->value_or(0);
    };
    auto epoch = db.query("SELECT value FROM meta WHERE key = 'database_epoch'");
    if (!epoch) return std::move(epoch).error();
    out["database_epoch"] =
        epoch->size() ? json::value(std::string(epoch->text(0, 0))) : json::value(nullptr);
    auto size = value("SELECT pg_database_size(current_database())");
    if (!size) return std::move(size).error();
    out["database_bytes"] = *size;

    json::object streams;
    const std::pair<const char*, const char*> counts[] = {
        {"live", "SELECT COUNT(*) FROM streams WHERE state = 0 AND path NOT LIKE '\\_\\_%'"},
        {"managed", "SELECT COUNT(*) FROM streams WHERE state = 0 AND path LIKE '\\_\\_%'"},
        {"soft_deleted", "SELECT COUNT(*) FROM streams WHERE state = 1"},
        {"purging", "SELECT COUNT(*) FROM streams WHERE state = 2"},
        {"appends", "SELECT COUNT(*) FROM messages"},
        {"payload_bytes", "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM messages"}};
    for (const auto& [key, sql] : counts) {
      auto n = value(sql);
      if (!n) return std::move(n).error();
      streams[key] = *n;
    }
    out["streams"] = std::move(streams);

    auto largest = db.query(
        "SELECT s.path, s.content_type, s.closed, COUNT(m.seq), COALESCE(SUM(LENGTH(m.data)), 0) "
        "FROM streams s LEFT JOIN messages m ON m.stream_id = s.id WHERE s.state = 0 "
        "GROUP BY s.id ORDER BY 5 DESC, s.path LIMIT $1",
        {pg::param::integer(f.top)});
    if (!largest) return std::move(largest).error();
    json::array list;
    for (int i = 0; i < largest->size(); ++i) {
      list.push_back({{"path", largest->text(i, 0)},
                      {"content_type", largest->text(i, 1)},
                      {"closed", largest->text(i, 2) == "t"},
                      {"appends", largest->int64(i, 3)},
                      {"payload_bytes", largest->int64(i, 4)}});
    }
    out["largest_streams"] = std::move(list);

    auto live = value("SELECT COUNT(*) FROM projects WHERE archived_at_ms IS NULL");
    auto archived = value("SELECT COUNT(*) FROM projects WHERE archived_at_ms IS NOT NULL");
    if (!live) return std::move(live).error();
    if (!archived) return std::move(archived).error();
    out["projects"] = {{"live", *live}, {"archived", *archived}};
    auto states = db.query("SELECT state, COUNT(*) FROM sessions GROUP BY state ORDER BY state");
    if (!states) return std::move(states).error();
    json::object by_state;
    std::int64_t total = 0;
    for (int i = 0; i < states->size(); ++i) {
      by_state[states->text(i, 0)] = states->int64(i, 1);
      total += states->int64(i, 1);
    }
    out["sessions"] = {{"total", total}, {"by_state", std::move(by_state)}};
    auto feed = db.query(
        "SELECT s.pruned_upto, COUNT(m.seq), s.tail_seq FROM streams s LEFT JOIN messages m ON "
        "m.stream_id = s.id WHERE s.path = $1 GROUP BY s.id",
        {std::string(sq::k_change_feed_path)});
    if (!feed) return std::move(feed).error();
    json::object change_feed{{"exists", feed->size() > 0}};
    if (feed->size()) {
      change_feed["pruned_upto"] = feed->int64(0, 0);
      change_feed["appends"] = feed->int64(0, 1);
      change_feed["tail"] = feed->int64(0, 2);
    }
    out["change_feed"] = std::move(change_feed);
    auto prs = value("SELECT COUNT(*) FROM prs");
    if (!prs) return std::move(prs).error();
    out["pull_requests"] = *prs;
    return ok_v;
  };
  status filled = fill();
  (void)db.exec("ROLLBACK");
  if (!filled) return filled.error();
  return out;
}

std::string human_bytes(std::int64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", v, units[u]);
  return buf;
}

std::int64_t num(const json::object& o, std::string_view a, std::string_view b = {}) {
  const json::value* v = o.if_contains(a);
  if (v && !b.empty()) v = v->as_object().if_contains(b);
  return v && v->is_int64() ? v->as_int64() : 0;
}

void print_text(const json::object& r) {
  std::printf("database        %s\n", json::value_to<std::string>(r.at("path")).c_str());
  std::printf("schema version  %lld (this ordo: %lld)\n",
              static_cast<long long>(num(r, "schema_version")),
              static_cast<long long>(num(r, "schema_version_of_this_ordo")));
  if (!r.contains("streams")) {
    std::printf("(empty database)\n");
    return;
  }
  if (r.at("database_epoch").is_string()) {
    std::printf("epoch           %s\n", r.at("database_epoch").as_string().c_str());
  }
  if (r.contains("files")) {
    std::printf("files           %s, WAL %s\n",
                human_bytes(num(r, "files", "database_bytes")).c_str(),
                human_bytes(num(r, "files", "wal_bytes")).c_str());
    std::printf("pages           %lld of %lld bytes, %lld free\n",
                static_cast<long long>(num(r, "pages", "page_count")),
                static_cast<long long>(num(r, "pages", "page_size")),
                static_cast<long long>(num(r, "pages", "free_pages")));
  } else {
    std::printf("size            %s (pg_database_size)\n",
                human_bytes(num(r, "database_bytes")).c_str());
  }
  std::printf("streams         %lld live, %lld managed, %lld soft-deleted, %lld purging\n",
              static_cast<long long>(num(r, "streams", "live")),
              static_cast<long long>(num(r, "streams", "managed")),
              static_cast<long long>(num(r, "streams", "soft_deleted")),
              static_cast<long long>(num(r, "streams", "purging")));
  std::printf("appends         %lld, %s of payload\n",
              static_cast<long long>(num(r, "streams", "appends")),
              human_bytes(num(r, "streams", "payload_bytes")).c_str());
  if (r.contains("projects")) {
    std::printf("projects        %lld live, %lld archived\n",
                static_cast<long long>(num(r, "projects", "live")),
                static_cast<long long>(num(r, "projects", "archived")));
    std::string states;
    for (const auto& [state, n] : r.at("sessions").at("by_state").as_object()) {
      states +=
          (states.empty() ? "" : ", ") + std::to_string(n.as_int64()) + " " + std::string(state);
    }
    std::printf("sessions        %lld%s%s%s\n", static_cast<long long>(num(r, "sessions", "total")),
                states.empty() ? "" : " (", states.c_str(), states.empty() ? "" : ")");
  }
  if (r.contains("change_feed")) {
    const auto& feed = r.at("change_feed").as_object();
    if (feed.at("exists").as_bool()) {
      std::printf("change feed     %lld appends kept, tail %lld, pruned up to %lld\n",
                  static_cast<long long>(num(feed, "appends")),
                  static_cast<long long>(num(feed, "tail")),
                  static_cast<long long>(num(feed, "pruned_upto")));
    } else {
      std::printf("change feed     (not created yet)\n");
    }
    std::printf("pull requests   %lld\n", static_cast<long long>(num(r, "pull_requests")));
  }
  const auto& largest = r.at("largest_streams").as_array();
  if (largest.empty()) return;
  std::printf("\nlargest streams\n  %-12s %-10s %-6s %s\n", "bytes", "appends", "closed", "path");
  for (const auto& v : largest) {
    const auto& s = v.as_object();
    std::printf("  %-12s %-10lld %-6s %s\n", human_bytes(num(s, "payload_bytes")).c_str(),
                static_cast<long long>(num(s, "appends")), s.at("closed").as_bool() ? "yes" : "no",
                s.at("path").as_string().c_str());
  }
}

// Prints the report (or why there is none); the process's exit status.
int print_report(const result<json::object>& r, const inspect_flags& f) {
  if (!r) {
    std::fprintf(stderr, "ordo inspect: %s\n", r.error().message.c_str());
    return 1;
  }
  if (f.json) {
    std::printf("%s\n", json::serialize(*r).c_str());
  } else {
    print_text(*r);
  }
  return 0;
}

}  // namespace

int inspect(const inspect_flags& f) {
  if (!f.storage.empty()) {
    if (!pg::is_postgres_url(f.storage)) {
      return print_report(make_failure(failure_kind::invalid, "invalid_storage",
                                       "--storage takes a postgres:// or postgresql:// URL, not '" +
                                           pg::redacted(f.storage) +
                                           "' (SQLite, the default, lives in --data-dir)"),
                          f);
    }
    auto db =
        pg::connection::open(f.storage, {.read_only = true, .application_name = "ordo inspect"});
    if (!db) return print_report(db.error(), f);
    return print_report(report_postgres(*db, f, pg::redacted(f.storage)), f);
  }
  const std::string path = (std::filesystem::path(f.data_dir) / "ordo.db").string();
  auto db = sq::connection::open(path, sq::open_mode::inspect, std::chrono::seconds(5));
  if (!db) return print_report(db.error(), f);
  return print_report(report(*db, f, path), f);
}

}  // namespace ordo::cli
