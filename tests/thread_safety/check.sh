#!/bin/sh
# The thread-safety build (CMakePresets.json "thread-safety", run by `make test`) is only worth
# something if the analysis rejects what it should: each of these files must fail with the
# errors named here, and the correct one must compile. Usage: check.sh SOURCE_DIR
set -u
src=$1
dir=$src/tests/thread_safety
cxx=${CXX_CLANG:-clang++-14}
flags="-std=c++20 -fsyntax-only -Wthread-safety -Werror -I$src/src"
failed=0

expect_ok() {
  if ! out=$($cxx $flags "$dir/$1" 2>&1); then
    echo "FAIL: $1 must compile; clang said:"; echo "$out"; failed=1
  else
    echo "ok: $1 compiles"
  fi
}

# expect_error FILE PATTERN...: compiling fails, with an error matching each pattern.
expect_error() {
  file=$1; shift
  if out=$($cxx $flags "$dir/$file" 2>&1); then
    echo "FAIL: $file compiled; the analysis must reject it"; failed=1; return
  fi
  for pattern in "$@"; do
    if ! printf '%s\n' "$out" | grep -q -- "$pattern"; then
      echo "FAIL: $file: no error matching '$pattern'; clang said:"; echo "$out"; failed=1
      return
    fi
  done
  echo "ok: $file is rejected"
}

expect_ok holds_the_lock.cpp
expect_error reads_unguarded.cpp "reading variable 'count_' requires holding mutex 'mu_'"
expect_error calls_without_lock.cpp \
  "calling function 'add_locked' requires holding mutex 'mu_'" \
  "reading variable 'count_' requires holding mutex 'mu_'"
exit $failed
