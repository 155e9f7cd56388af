// `ordo inspect`: what a database holds — schema, files, streams, sessions, the change feed —
// read without changing a byte of it (open_mode::inspect), with or without a server running.
#pragma once

#include <string>

namespace ordo::cli {

struct inspect_flags {
  std::string data_dir = "./data";
  std::string storage;  // a postgres:// URL; empty: SQLite in data_dir
  bool json = false;
  int top = 10;  // how many of the largest streams to list
};

// Prints the report to stdout; returns the process exit status (0, or 1 with a message on
// stderr).
int inspect(const inspect_flags& flags);

}  // namespace ordo::cli
