// What both storage engines' migrations (storage/sqlite/migrations.cpp,
// storage/postgres/migrations.cpp) say the same way: a database from a newer ordo, and a list of
// schema differences.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace ordo::storage {

// schema_too_new for a database whose version (`current`) is beyond the newest this binary
// knows (`known`).
inline status refuse_newer_schema(std::int64_t current, std::int64_t known) {
  if (current <= known) return ok_v;
  return make_failure(failure_kind::unavailable, "schema_too_new",
                      "the database has schema version " + std::to_string(current) +
                          ", written by a newer ordo; this binary knows versions up to " +
                          std::to_string(known) +
                          ". Run the newer ordo, or restore a backup made by this version.");
}

// How many problems an error message lists before "and N more".
inline constexpr std::size_t k_most_listed_problems = 10;

// `items` joined with "; ", the first k_most_listed_problems of them, then "and N more".
inline std::string listed_problems(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < k_most_listed_problems; ++i) {
    if (i) out += "; ";
    out += items[i];
  }
  if (items.size() > k_most_listed_problems) {
    out += "; and " + std::to_string(items.size() - k_most_listed_problems) + " more";
  }
  return out;
}

}  // namespace ordo::storage
