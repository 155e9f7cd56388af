#include "cli/doctor.hpp"

#include <boost/json.hpp>
#include <cstdio>
#include <filesystem>

#include "storage/postgres/connection.hpp"
#include "storage/postgres/doctor.hpp"
#include "storage/sqlite/doctor.hpp"

namespace ordo::cli {
namespace {

namespace json = boost::json;
namespace sq = ordo::sqlite;

void print(const std::string& path, const sq::doctor_report& r, bool json_output) {
  if (json_output) {
    json::array findings;
    for (const sq::finding& f : r.findings) {
      findings.push_back({{"check", f.check},
                          {"subject", f.subject},
                          {"message", f.message},
                          {"repairable", f.repairable}});
    }
    json::array repairs;
    for (const std::string& s : r.repairs)
      repairs.push_back(json::string(s));
    json::object out{{"path", path},
                     {"healthy", r.findings.empty()},
                     {"findings", std::move(findings)},
                     {"repairs", std::move(repairs)},
                     {"epoch_renewed", r.epoch_renewed}};
    std::printf("%s\n", json::serialize(out).c_str());
    return;
  }
  for (const std::string& s : r.repairs)
    std::printf("repaired: %s\n", s.c_str());
  if (r.findings.empty()) {
    std::printf("%s: healthy\n", path.c_str());
    return;
  }
  std::printf("%s: %zu problem(s)\n", path.c_str(), r.findings.size());
  bool repairable = false;
  for (const sq::finding& f : r.findings) {
    std::printf("  %-16s %s: %s%s\n", f.check.c_str(), f.subject.c_str(), f.message.c_str(),
                f.repairable ? " (repairable)" : "");
    repairable = repairable || f.repairable;
  }
  if (repairable) std::printf("run ordo doctor --repair with the server stopped to repair\n");
}

// PostgreSQL: read-only, diagnosis only.
int doctor_postgres(const doctor_flags& f) {
  namespace pg = ordo::postgres;
  const std::string where = pg::redacted(f.storage);
  auto fail = [&](const failure& e) {
    std::fprintf(stderr, "ordo doctor: %s\n", e.message.c_str());
    return 2;
  };
  if (!pg::is_postgres_url(f.storage)) {
    return fail(make_failure(failure_kind::invalid, "invalid_storage",
                             "--storage takes a postgres:// or postgresql:// URL, not '" + where +
                                 "' (SQLite, the default, lives in --data-dir)"));
  }
  if (f.repair) {
    return fail(make_failure(failure_kind::not_implemented, "repair_unavailable",
                             "--repair is for SQLite databases; on PostgreSQL, doctor only "
                             "diagnoses (restore a backup, or correct what it names by hand)"));
  }
  auto db = pg::connection::open(f.storage, {.read_only = true, .application_name = "ordo doctor"});
  if (!db) return fail(db.error());
  auto findings = pg::diagnose(*db);
  if (!findings) return fail(findings.error());
  sq::doctor_report report;
  for (pg::finding& x : *findings)
    report.findings.push_back(
        {std::move(x.check), std::move(x.subject), std::move(x.message), false});
  print(where, report, f.json);
  return report.findings.empty() ? 0 : 1;
}

}  // namespace

int doctor(const doctor_flags& f) {
  if (!f.storage.empty()) return doctor_postgres(f);
  const std::string path = (std::filesystem::path(f.data_dir) / "ordo.db").string();
  auto fail = [&](const failure& e) {
    std::fprintf(stderr, "ordo doctor: %s\n", e.message.c_str());
    return 2;
  };
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return fail(make_failure(failure_kind::not_found, "database_not_found",
                             "no database at '" + path + "'"));
  }
  sq::doctor_report report;
  if (f.repair) {
    auto db = sq::open_for_repair(path);
    if (!db) return fail(db.error());
    auto r = sq::repair(*db);
    // Back to the journal mode ordo serves with, whatever happened.
    (void)db->exec("PRAGMA journal_mode=WAL");
    if (!r) return fail(r.error());
    report = std::move(*r);
  } else {
    auto db = sq::connection::open(path, sq::open_mode::inspect, std::chrono::seconds(5));
    if (!db) return fail(db.error());
    auto findings = sq::diagnose(*db);
    if (!findings) return fail(findings.error());
    report.findings = std::move(*findings);
  }
  print(path, report, f.json);
  return report.findings.empty() ? 0 : 1;
}

}  // namespace ordo::cli
