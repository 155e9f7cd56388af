// A real stream engine (and, for the session API, a real session service) over a SQLite database
// in a temporary directory, opened once per fuzzing process (LLVMFuzzerInitialize) and never
// closed: libFuzzer exits the process without running destructors, and the directory is removed
// at exit by atexit().
#pragma once

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "sessions/session_service.hpp"
#include "streams/stream_engine.hpp"

namespace ordo::fuzz {

struct engine_fixture {
  std::filesystem::path dir;
  std::unique_ptr<stream_engine> engine;
  std::unique_ptr<sessions::session_service> service;
};

// For LLVMFuzzerInitialize(argc, argv) of a harness over the engine: puts -detect_leaks=0 first
// among libFuzzer's flags (it reads them afterwards, so one on the command line still wins). The
// engine keeps what a request creates (registry records, caches) by design, so libFuzzer's check
// after each input that allocated more than it freed would scan the whole heap every time, at a
// few runs a second.
inline void disable_leak_checks(int* argc, char*** argv) {
  static std::vector<char*> args;
  static char no_leak_checks[] = "-detect_leaks=0";
  args.assign(*argv, *argv + *argc);
  args.insert(args.begin() + 1, no_leak_checks);
  args.push_back(nullptr);
  *argc += 1;
  *argv = args.data();
}

inline engine_fixture& fixture() {
  static engine_fixture f;
  return f;
}

inline void remove_fixture_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(fixture().dir, ignored);
}

// Opens the engine (and the session service when `with_sessions`); aborts if it cannot.
inline engine_fixture& open_fixture(bool with_sessions) {
  engine_fixture& f = fixture();
  if (f.engine) return f;
  spdlog::set_level(spdlog::level::off);
  char templ[] = "/tmp/ordo-fuzz-XXXXXX";
  if (!mkdtemp(templ)) {
    std::perror("mkdtemp");
    std::abort();
  }
  f.dir = templ;
  std::atexit(remove_fixture_dir);
  stream_engine_options o;
  o.database.path = (f.dir / "ordo.db").string();
  // No fsync: the harness checks answers, not durability, and needs speed.
  o.database.sync = sqlite::sync_mode::normal;
  o.reader_threads = 1;
  // Every session has an event stream: small tail caches keep a long run's memory flat.
  o.tail_cache_bytes = 4 << 10;
  o.tail_cache_total_bytes = 4 << 20;
  auto e = stream_engine::open(std::move(o));
  if (!e) {
    std::fprintf(stderr, "cannot open the engine: %s\n", e.error().message.c_str());
    std::abort();
  }
  f.engine = std::move(*e);
  if (with_sessions) {
    f.service =
        std::make_unique<sessions::session_service>(*f.engine, sessions::session_service_options{});
    f.service->start();
  }
  return f;
}

}  // namespace ordo::fuzz
