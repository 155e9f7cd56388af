# libFuzzer harnesses (fuzz/*.cpp, one per harness), built by the `fuzz` preset with clang: the
# libraries with -fsanitize=fuzzer-no-link,address,undefined (ORDO_SANITIZE), each harness linked
# with -fsanitize=fuzzer. `make fuzz` runs each on a scratch copy of its corpus for FUZZ_SECONDS;
# `ctest --preset fuzz` (part of `make test`) runs each for a few seconds and fails on a crash.
#
# The harnesses link the server's library (ordo_http), so the fuzz preset builds the server's
# sources with the sanitizers too: the dispatch harness drives the whole server in process, and
# the others take only the objects they use from it.
enable_testing()

# How long the smoke run of each harness in `make test` lasts, in seconds.
set(ORDO_FUZZ_SMOKE_SECONDS 5 CACHE STRING "Seconds each harness runs under ctest")

# Every harness is a source fuzz/<name>.cpp with its seed corpus in fuzz/corpus/<name>/: a new
# harness (the token parsing one of the authentication work, say) is a file and a folder, and
# `make fuzz` and ctest pick it up. Target ordo_fuzzers builds them all.
file(GLOB ORDO_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/*.cpp)
add_custom_target(ordo_fuzzers)

foreach(source IN LISTS ORDO_FUZZ_SOURCES)
  get_filename_component(harness ${source} NAME_WE)
  add_executable(fuzz_${harness} ${source})
  add_dependencies(ordo_fuzzers fuzz_${harness})
  target_link_libraries(fuzz_${harness} PRIVATE ordo_http)
  target_include_directories(fuzz_${harness} PRIVATE ${CMAKE_SOURCE_DIR})
  target_link_options(fuzz_${harness} PRIVATE -fsanitize=fuzzer)
  # New inputs go to the first directory, a scratch one: the committed seeds stay as they are.
  add_test(NAME fuzz_${harness}
           COMMAND sh -c "rm -rf scratch && mkdir scratch && exec $<TARGET_FILE:fuzz_${harness}> \
-max_total_time=${ORDO_FUZZ_SMOKE_SECONDS} -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
scratch ${CMAKE_SOURCE_DIR}/fuzz/corpus/${harness}"
           WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz-smoke/${harness})
  file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz-smoke/${harness})
  set_tests_properties(fuzz_${harness} PROPERTIES TIMEOUT 120
    ENVIRONMENT "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1;UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
endforeach()
