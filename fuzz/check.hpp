// The harnesses' assertion: an invariant that does not hold is a crash libFuzzer reports and
// saves the input of (assert() would vanish under NDEBUG).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace ordo::fuzz {

inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

}  // namespace ordo::fuzz
