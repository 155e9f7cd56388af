// For tests (included by *_test.cpp only): a throwaway PostgreSQL cluster of the tests' own, in a
// temporary directory, reached only through a unix socket there (no TCP port, so parallel tests
// never clash), with fsync off. initdb refuses to run as root, so as root the cluster runs as the
// `postgres` user (runuser), which the postgresql-15 package creates.
//
// The server binaries are looked up in $ORDO_PG_BIN, then /usr/lib/postgresql/<newest>/bin.
// Without them the tests that need a cluster are skipped, unless ORDO_REQUIRE_POSTGRES=1 (set by
// CI, where scripts/bootstrap --test installs PostgreSQL): then they fail.
#pragma once

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "storage/postgres/connection.hpp"
#include "storage/postgres/migrations.hpp"

namespace ordo::postgres::testing {

class scratch_cluster {
 public:
  // The cluster, started; nullptr with `why` saying what is missing or what failed.
  static std::unique_ptr<scratch_cluster> start(std::string& why) {
    std::string bin = server_binaries();
    if (bin.empty()) {
      why = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed";
      return nullptr;
    }
    reap_abandoned(bin);
    char pattern[] = "/tmp/ordo-pg-XXXXXX";
    if (!::mkdtemp(pattern)) {
      why = "cannot make a temporary directory";
      return nullptr;
    }
    std::unique_ptr<scratch_cluster> c(new scratch_cluster(bin, pattern));
    std::ofstream(c->dir_ + "/owner") << ::getpid() << "\n";
    if (::geteuid() == 0) {
      passwd* pw = ::getpwnam("postgres");
      if (!pw) {
        why = "running as root, and there is no postgres user to run the cluster as";
        return nullptr;
      }
      if (::chown(c->dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
        why = "cannot give " + c->dir_ + " to the postgres user";
        return nullptr;
      }
      c->as_user_ = "runuser -u postgres -- ";
    }
    const std::string log = c->dir_ + "/setup.log";
    std::string initdb = c->as_user_ + bin + "/initdb -D " + c->data() +
                         " -A trust -U ordo -E UTF8 --locale=C --no-sync > " + log + " 2>&1";
    if (std::system(initdb.c_str()) != 0) {
      why = "initdb failed: " + c->read(log);
      return nullptr;
    }
    if (!c->run_pg_ctl("start")) {
      why = "the cluster did not start: " + c->read(log) + c->read(c->dir_ + "/server.log");
      return nullptr;
    }
    c->started_ = true;
    return c;
  }

  ~scratch_cluster() {
    if (started_) run_pg_ctl("stop -m immediate");
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  scratch_cluster(const scratch_cluster&) = delete;
  scratch_cluster& operator=(const scratch_cluster&) = delete;

  // A URL for database `db` (postgres exists from the start) as the superuser `ordo`.
  std::string url(const std::string& db = "postgres") const {
    return "postgresql://ordo@/" + db + "?host=" + dir_ + "&port=" + std::to_string(k_port);
  }
  const std::string& directory() const { return dir_; }

  // Whether tests must fail rather than skip without PostgreSQL.
  static bool required() {
    const char* v = std::getenv("ORDO_REQUIRE_POSTGRES");
    return v && std::string(v) == "1";
  }

 private:
  static constexpr int k_port = 5432;  // names the socket file only; there is no TCP listener

  scratch_cluster(std::string bin, std::string dir) : bin_(std::move(bin)), dir_(std::move(dir)) {}

  std::string data() const { return dir_ + "/data"; }

  // A test process that died without its destructors (a crash, a kill) leaves its cluster
  // running: stop and remove every cluster whose owner process is gone.
  static void reap_abandoned(const std::string& bin) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
      const std::string name = entry.path().filename().string();
      if (!name.starts_with("ordo-pg-")) continue;
      std::ifstream owner(entry.path() / "owner");
      pid_t pid = 0;
      if (!(owner >> pid) || pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
      const std::string as_user = ::geteuid() == 0 ? "runuser -u postgres -- " : "";
      std::string stop = as_user + bin + "/pg_ctl -D " + entry.path().string() +
                         "/data stop -m immediate > /dev/null 2>&1";
      (void)std::system(stop.c_str());
      fs::remove_all(entry.path(), ec);
    }
  }

  bool run_pg_ctl(const std::string& action) const {
    std::string cmd = as_user_ + bin_ + "/pg_ctl -D " + data() + " -w -l " + dir_ +
                      "/server.log -o \"-p " + std::to_string(k_port) + " -k " + dir_ +
                      " -c listen_addresses='' -c fsync=off -c synchronous_commit=off"
                      " -c full_page_writes=off\" " +
                      action + " >> " + dir_ + "/setup.log 2>&1";
    return std::system(cmd.c_str()) == 0;
  }

  static std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  static std::string server_binaries() {
    namespace fs = std::filesystem;
    if (const char* env = std::getenv("ORDO_PG_BIN")) return env;
    std::error_code ec;
    std::string best;
    int best_version = 0;
    for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
      int version = std::atoi(entry.path().filename().c_str());
      fs::path bin = entry.path() / "bin";
      if (version > best_version && fs::exists(bin / "initdb") && fs::exists(bin / "pg_ctl")) {
        best_version = version;
        best = bin.string();
      }
    }
    return best;
  }

  std::string bin_;
  std::string dir_;
  std::string as_user_;
  bool started_ = false;
};

// The cluster the whole test binary shares, started by its first caller and stopped at exit;
// nullptr, with `why`, when none can start here.
inline scratch_cluster* shared_cluster(std::string& why) {
  static std::string reason;
  static std::unique_ptr<scratch_cluster> shared = scratch_cluster::start(reason);
  why = reason;
  return shared.get();
}

// A new database in `cluster`; its name.
inline result<std::string> new_database(scratch_cluster& cluster) {
  static int databases = 0;
  std::string name = "test_" + std::to_string(::getpid()) + "_" + std::to_string(++databases);
  auto admin = connection::open(cluster.url());
  if (!admin) return std::move(admin).error();
  if (auto s = admin->exec("CREATE DATABASE " + name); !s) return std::move(s).error();
  return name;
}

// A test that needs PostgreSQL: one cluster for the whole test binary (shared_cluster()), and a
// database of its own per test.
class postgres_test : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    cluster_ = shared_cluster(why);
    if (!cluster_) {
      if (scratch_cluster::required()) FAIL() << "no PostgreSQL for this test: " << why;
      GTEST_SKIP() << "no PostgreSQL for this test: " << why;
    }
    auto name = new_database(*cluster_);
    ASSERT_TRUE(name) << name.error().message;
    database_ = *name;
  }

  // The test's own database.
  std::string url() const { return cluster_->url(database_); }
  result<connection> connect(const open_options& options = {}) const {
    return connection::open(url(), options);
  }

  scratch_cluster* cluster_ = nullptr;
  std::string database_;
};

// The same, with the test's database migrated to ordo's schema.
class migrated_postgres_test : public postgres_test {
 protected:
  void SetUp() override {
    postgres_test::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    auto db = connect();
    ASSERT_TRUE(db) << db.error().message;
    auto migrated = migrate(*db);
    ASSERT_TRUE(migrated) << migrated.error().message;
  }
};

}  // namespace ordo::postgres::testing
