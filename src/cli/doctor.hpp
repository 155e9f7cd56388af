// `ordo doctor [--json] [--repair]`: see storage/sqlite/doctor.hpp for the checks;
// `ordo doctor --storage postgres://...`: storage/postgres/doctor.hpp.
#pragma once

#include <string>

namespace ordo::cli {

struct doctor_flags {
  std::string data_dir = "./data";
  std::string storage;  // a postgres:// URL (storage/postgres/doctor.hpp); empty: SQLite
  bool json = false;
  bool repair = false;
};

// Exit status: 0 healthy (after the repair, with --repair), 1 problems found (or left), 2 the
// checks could not run (no database, a newer ordo's database, in use during --repair).
int doctor(const doctor_flags& flags);

}  // namespace ordo::cli
