// The `ordo` command: its subcommands, each parsed here and run by its own file (serve in
// cli/serve_command.cpp, the client commands in cli/client_commands.cpp, ...); migrate and
// backup, which are short, are here.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <filesystem>
#include <tuple>

#include "base/duration.hpp"
#include "cli/client_commands.hpp"
#include "cli/demo.hpp"
#include "cli/doctor.hpp"
#include "cli/inspect.hpp"
#include "cli/serve_command.hpp"
#include "cli/token_commands.hpp"
#include "http/access.hpp"
#include "http/session_api.hpp"
#include "storage/postgres/connection.hpp"
#include "storage/postgres/migrations.hpp"
#include "storage/sqlite/backup.hpp"
#include "storage/sqlite/database.hpp"
#include "storage/sqlite/migrations.hpp"

namespace {

// `ordo routes`: the router's table, then the session API's, each route with its rule.
int print_routes(bool json) {
  auto rules = ordo::http::router_route_rules();
  for (auto& r : ordo::http::session_route_rules())
    rules.push_back(std::move(r));
  for (const auto& r : rules) {
    if (json) {
      boost::json::object o{{"method", r.method}, {"path", r.path}, {"requires", r.rule}};
      std::printf("%s\n", boost::json::serialize(o).c_str());
    } else {
      std::printf("%-28s %-55s %s\n", r.method.c_str(), r.path.c_str(),
                  r.rule.empty() ? "(NO RULE)" : r.rule.c_str());
    }
  }
  return 0;
}

struct migrate_flags {
  std::string data_dir = "./data";
  std::string storage;  // a postgres:// URL; empty: SQLite in data_dir
  bool dry_run = false;
};

void print_migrations(std::span<const ordo::postgres::migration> list) {
  for (const auto& m : list)
    std::printf("  %3lld  %.*s\n", static_cast<long long>(m.version),
                static_cast<int>(m.name.size()), m.name.data());
}

// `ordo migrate --storage postgres://...`: the same for a PostgreSQL database. --dry-run connects
// read-only. Several nodes may run it at once: the migrations run once, under an advisory lock.
int migrate_postgres(const migrate_flags& f) {
  namespace pg = ordo::postgres;
  const std::string where = pg::redacted(f.storage);
  auto db = pg::connection::open(f.storage, {.read_only = f.dry_run});
  if (!db) {
    std::fprintf(stderr, "ordo migrate: %s\n", db.error().message.c_str());
    return 1;
  }
  auto pending = pg::pending_migrations(*db);
  if (!pending) {
    std::fprintf(stderr, "ordo migrate: %s: %s\n", where.c_str(), pending.error().message.c_str());
    return 1;
  }
  auto before = pg::current_schema_version(*db);
  if (!before) {
    std::fprintf(stderr, "ordo migrate: %s: %s\n", where.c_str(), before.error().message.c_str());
    return 1;
  }
  if (f.dry_run) {
    if (pending->empty()) {
      std::printf("%s: schema version %lld is current; nothing to do\n", where.c_str(),
                  static_cast<long long>(*before));
    } else {
      std::printf("%s: schema version %lld; %zu migration(s) would run:\n", where.c_str(),
                  static_cast<long long>(*before), pending->size());
      print_migrations(*pending);
    }
    return 0;
  }
  auto applied = pg::migrate(*db);  // and the schema probe
  if (!applied) {
    std::fprintf(stderr, "ordo migrate: %s: %s\n", where.c_str(), applied.error().message.c_str());
    return 1;
  }
  const std::int64_t after = pg::latest_schema_version();
  if (*applied == 0) {
    std::printf("%s: schema version %lld is current; nothing to do\n", where.c_str(),
                static_cast<long long>(after));
    return 0;
  }
  std::vector<pg::migration> done;
  for (const pg::migration& m : pg::all_migrations()) {
    if (m.version > *before && m.version <= after) done.push_back(m);
  }
  std::printf("%s: applied %zu migration(s), now at schema version %lld:\n", where.c_str(),
              done.size(), static_cast<long long>(after));
  print_migrations(done);
  return 0;
}

// `ordo migrate`: brings the database to this binary's schema (what `serve` does on start) or,
// with --dry-run, lists what would run without touching the file. Exit 0 when the database is
// (or would be) current, 1 when it cannot be (newer ordo, bad schema, I/O).
int migrate(const migrate_flags& f) {
  namespace sq = ordo::sqlite;
  if (!f.storage.empty()) {
    if (!ordo::postgres::is_postgres_url(f.storage)) {
      std::fprintf(stderr,
                   "ordo migrate: --storage takes a postgres:// or postgresql:// URL, not '%s' "
                   "(SQLite, the default, lives in --data-dir)\n",
                   ordo::postgres::redacted(f.storage).c_str());
      return 2;
    }
    return migrate_postgres(f);
  }
  const std::string path = (std::filesystem::path(f.data_dir) / "ordo.db").string();
  auto list = [](std::span<const sq::migration> pending) {
    for (const sq::migration& m : pending)
      std::printf("  %3lld  %.*s\n", static_cast<long long>(m.version),
                  static_cast<int>(m.name.size()), m.name.data());
  };
  std::error_code ec;
  const bool exists = std::filesystem::exists(path, ec);
  std::int64_t before = 0;
  if (exists) {
    auto db = sq::connection::open(path, sq::open_mode::inspect, std::chrono::seconds(5));
    if (!db) {
      std::fprintf(stderr, "ordo migrate: %s\n", db.error().message.c_str());
      return 1;
    }
    auto pending = sq::pending_migrations(*db);
    if (!pending) {
      std::fprintf(stderr, "ordo migrate: %s\n", pending.error().message.c_str());
      return 1;
    }
    before = *sq::current_schema_version(*db);
    if (f.dry_run) {
      if (pending->empty()) {
        std::printf("%s: schema version %lld is current; nothing to do\n", path.c_str(),
                    static_cast<long long>(before));
        return 0;
      }
      std::printf("%s: schema version %lld; %zu migration(s) would run:\n", path.c_str(),
                  static_cast<long long>(before), pending->size());
      list(*pending);
      return 0;
    }
  } else if (f.dry_run) {
    std::printf("%s does not exist; it would be created with %zu migration(s):\n", path.c_str(),
                sq::all_migrations().size());
    list(sq::all_migrations());
    return 0;
  }

  std::filesystem::create_directories(f.data_dir, ec);
  sq::database_options options;
  options.path = path;
  auto db = sq::open_write_connection(options);  // migrates and runs the schema probe
  if (!db) {
    std::fprintf(stderr, "ordo migrate: %s\n", db.error().message.c_str());
    return 1;
  }
  const std::int64_t after = *sq::current_schema_version(*db);
  std::vector<sq::migration> applied;
  for (const sq::migration& m : sq::all_migrations()) {
    if (m.version > before && m.version <= after) applied.push_back(m);
  }
  if (applied.empty()) {
    std::printf("%s: schema version %lld is current; nothing to do\n", path.c_str(),
                static_cast<long long>(after));
  } else {
    std::printf("%s: applied %zu migration(s), now at schema version %lld:\n", path.c_str(),
                applied.size(), static_cast<long long>(after));
    list(applied);
  }
  return 0;
}

struct backup_flags {
  std::string data_dir = "./data";
  std::string destination;
  bool force = false;
};

// `ordo backup DEST`: a consistent copy of the database, also while a server writes to it.
int backup(const backup_flags& f) {
  ordo::sqlite::backup_options options;
  options.source = (std::filesystem::path(f.data_dir) / "ordo.db").string();
  options.destination = f.destination;
  options.overwrite = f.force;
  auto r = ordo::sqlite::backup_database(options);
  if (!r) {
    std::fprintf(stderr, "ordo backup: %s\n", r.error().message.c_str());
    return 1;
  }
  std::printf("%s: copied to %s (%lld bytes, schema version %lld, integrity ok)\n",
              options.source.c_str(), f.destination.c_str(), static_cast<long long>(r->bytes),
              static_cast<long long>(r->schema_version));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto console = spdlog::stderr_color_mt("ordo");
  spdlog::set_default_logger(console);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %l %v");

  CLI::App app{"ordo: durable, ordered event streams for AI-agent sessions"};
  app.require_subcommand(1);
  auto serve_cmd = ordo::cli::add_serve_command(app);

  migrate_flags mf;
  auto* migrate_cmd = app.add_subcommand(
      "migrate", "Bring the database to this ordo's schema (serve does it on start)");
  migrate_cmd->add_option("--data-dir", mf.data_dir, "Directory holding the database (ordo.db)")
      ->envname("ORDO_DATA_DIR")
      ->capture_default_str();
  migrate_cmd
      ->add_option("--storage", mf.storage,
                   "A PostgreSQL database (postgres://user:password@host:port/db) instead of "
                   "SQLite in --data-dir")
      ->envname("ORDO_STORAGE");
  migrate_cmd->add_flag("--dry-run", mf.dry_run,
                        "List the migrations that would run; open the database read-only");

  backup_flags bf;
  auto* backup_cmd = app.add_subcommand(
      "backup", "Copy the database consistently, also while the server runs and writes");
  backup_cmd->add_option("--data-dir", bf.data_dir, "Directory holding the database (ordo.db)")
      ->envname("ORDO_DATA_DIR")
      ->capture_default_str();
  backup_cmd->add_option("destination", bf.destination, "The file to write the copy to")
      ->required();
  backup_cmd->add_flag("--force", bf.force, "Replace the destination if it exists");

  ordo::cli::inspect_flags inf;
  auto* inspect_cmd = app.add_subcommand(
      "inspect", "Show what the database holds, read-only (also while the server runs)");
  inspect_cmd->add_option("--data-dir", inf.data_dir, "Directory holding the database (ordo.db)")
      ->envname("ORDO_DATA_DIR")
      ->capture_default_str();
  inspect_cmd
      ->add_option("--storage", inf.storage,
                   "A PostgreSQL database (postgres://...) instead of SQLite in --data-dir")
      ->envname("ORDO_STORAGE");
  inspect_cmd->add_flag("--json", inf.json, "One JSON object instead of text");
  inspect_cmd->add_option("--top", inf.top, "How many of the largest streams to list")
      ->check(CLI::Range(0, 10'000))
      ->capture_default_str();

  ordo::cli::doctor_flags df;
  auto* doctor_cmd = app.add_subcommand(
      "doctor", "Check the database (SQLite and ordo's invariants); --repair fixes sequences");
  doctor_cmd->add_option("--data-dir", df.data_dir, "Directory holding the database (ordo.db)")
      ->envname("ORDO_DATA_DIR")
      ->capture_default_str();
  doctor_cmd
      ->add_option("--storage", df.storage,
                   "A PostgreSQL database (postgres://...) instead of SQLite in --data-dir; "
                   "read-only, no --repair")
      ->envname("ORDO_STORAGE");
  doctor_cmd->add_flag("--json", df.json, "One JSON object instead of text");
  doctor_cmd->add_flag("--repair", df.repair,
                       "Renumber broken sequences in one transaction (the server must be "
                       "stopped); then check again");

  ordo::cli::demo_flags demo_f;
  auto* demo_cmd = app.add_subcommand(
      "demo", "Drive a simulated agent session against a running server (for the dashboard at /)");
  demo_cmd->add_option("--server", demo_f.server, "The server's URL")
      ->envname("ORDO_URL")
      ->capture_default_str();
  demo_cmd
      ->add_option("--cacert", demo_f.cacert,
                   "For an https:// server: trust the CA certificates in this PEM file "
                   "instead of the system's")
      ->envname("ORDO_CACERT")
      ->type_name("FILE");
  demo_cmd->add_option("--project", demo_f.project, "The project to create the session in")
      ->capture_default_str();
  for (auto [flag, value, what] :
       {std::tuple{"--step-delay", &demo_f.step_delay, "Pause between the agent's steps"},
        std::tuple{"--chunk-delay", &demo_f.chunk_delay,
                   "Pause between the chunks of a streamed message"},
        std::tuple{"--approval-delay", &demo_f.approval_delay,
                   "How long the approval request waits for an answer"}}) {
    demo_cmd->add_option(flag, *value, what)
        ->check([](const std::string& text) {
          auto d = ordo::parse_duration(text);
          return d ? std::string() : d.error().message;
        })
        ->capture_default_str();
  }

  bool routes_json = false;
  auto* routes_cmd = app.add_subcommand(
      "routes", "List the HTTP routes with the scope each requires (docs/SECURITY.md)");
  routes_cmd->add_flag("--json", routes_json, "One JSON object per route");

  auto client_cmds = ordo::cli::add_client_commands(app);
  auto token_cmds = ordo::cli::add_token_commands(app);

  try {
    app.parse(argc, argv);
    ordo::cli::apply_serve_config(*serve_cmd);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every usage error exits 2 (docs/CLI.md).
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (auto rc = ordo::cli::run(*client_cmds)) return *rc;
  if (auto rc = ordo::cli::run(*token_cmds)) return *rc;
  if (demo_cmd->parsed()) return ordo::cli::demo(demo_f);
  if (routes_cmd->parsed()) return print_routes(routes_json);
  if (auto rc = ordo::cli::run(*serve_cmd)) return *rc;
  if (migrate_cmd->parsed()) return migrate(mf);
  if (backup_cmd->parsed()) return backup(bf);
  if (inspect_cmd->parsed()) return ordo::cli::inspect(inf);
  if (doctor_cmd->parsed()) return ordo::cli::doctor(df);
  return 0;
}
