# Black-box and external test suites, registered with CTest. They run the real server binary
# (ORDO_BIN) on a loopback port with a temporary data directory; see tests/support/.
set(ORDO_TESTS_DIR ${CMAKE_SOURCE_DIR}/tests)
set(ORDO_VITEST ${ORDO_TESTS_DIR}/node_modules/.bin/vitest)

function(ordo_vitest name file)
  cmake_parse_arguments(ARG "" "TIMEOUT" "ENV" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_test(NAME ${name}
           COMMAND ${ORDO_VITEST} run --config vitest.config.mjs ${file}
           WORKING_DIRECTORY ${ORDO_TESTS_DIR})
  set_tests_properties(${name} PROPERTIES
    ENVIRONMENT "ORDO_BIN=$<TARGET_FILE:ordo>;${ARG_ENV}"
    TIMEOUT ${ARG_TIMEOUT})
endfunction()

# The sanitized build (the asan preset, ORDO_SANITIZE set): the suites that matter most run
# against its server, named <suite>_asan. A sanitizer's report fails the test
# (support/ordo_server.mjs); ORDO_TEST_TIME_SCALE gives the slower binary more time where a test
# bounds how long ordo may take, and ORDO_TEST_SANITIZED skips bounds on its memory.
if(ORDO_SANITIZE)
  set(ORDO_SANITIZER_ENV
    "ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0"
    "UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    "ORDO_TEST_TIME_SCALE=4"
    "ORDO_TEST_SANITIZED=1")
  ordo_vitest(conformance_asan conformance/conformance.test.mjs
              ENV ORDO_SYNC=normal ${ORDO_SANITIZER_ENV} TIMEOUT 1800)
  foreach(suite bad_input hostile_input changes_feed sessions_api pull_requests fault_proxy
                storage_faults crash file_replacement delivery_stress slow_clients
                postgres_cluster)
    ordo_vitest(${suite}_asan blackbox/${suite}.test.mjs ENV ${ORDO_SANITIZER_ENV} TIMEOUT 900)
  endforeach()
  return()
endif()

# The official Durable Streams conformance suite, with both durability settings.
ordo_vitest(conformance_sync_full conformance/conformance.test.mjs ENV ORDO_SYNC=full TIMEOUT 900)
ordo_vitest(conformance_sync_normal conformance/conformance.test.mjs ENV ORDO_SYNC=normal TIMEOUT 900)
# The same suite against ordo storing its streams in PostgreSQL (--storage), in a scratch cluster
# of the test's own (support/postgres.mjs).
ordo_vitest(conformance_postgres conformance/conformance.test.mjs
            ENV "ORDO_SYNC=full;ORDO_CONFORMANCE_STORAGE=postgres" TIMEOUT 900)
# And against two nodes on one PostgreSQL database behind nginx round-robin
# (support/proxy_cluster.mjs), so consecutive requests of one test land on different nodes.
ordo_vitest(conformance_postgres_cluster conformance/conformance.test.mjs
            ENV "ORDO_SYNC=full;ORDO_CONFORMANCE_STORAGE=postgres-cluster" TIMEOUT 900)
# The same suite over HTTPS (--tls-cert/--tls-key) with a test CA the fixture makes first:
# Node reads NODE_EXTRA_CA_CERTS only when it starts.
set(ORDO_TLS_TEST_DIR ${CMAKE_BINARY_DIR}/tls-test-certs)
add_test(NAME tls_test_certs
         COMMAND sh -c "rm -rf '${ORDO_TLS_TEST_DIR}' && node support/tls.mjs '${ORDO_TLS_TEST_DIR}'"
         WORKING_DIRECTORY ${ORDO_TESTS_DIR})
set_tests_properties(tls_test_certs PROPERTIES FIXTURES_SETUP tls_test_certs)
ordo_vitest(conformance_tls conformance/conformance.test.mjs
            ENV "ORDO_SYNC=full;ORDO_TLS_DIR=${ORDO_TLS_TEST_DIR};NODE_EXTRA_CA_CERTS=${ORDO_TLS_TEST_DIR}/ca.pem"
            TIMEOUT 900)
set_tests_properties(conformance_tls PROPERTIES FIXTURES_REQUIRED tls_test_certs)

# kill -9 at random moments under eight concurrent idempotent producers, five rounds.
ordo_vitest(crash_sigkill blackbox/crash.test.mjs)

# Bad input and limits: every malformed header, offset, path and body gets the prescribed 4xx
# with a JSON error, nothing is half-written, and other clients keep being served.
ordo_vitest(bad_input blackbox/bad_input.test.mjs)

# The command line: --help, ORDO_* variables, refused flags, SIGTERM, restarts.
ordo_vitest(serve_cli blackbox/serve_cli.test.mjs)

# The config file (ordo serve --config, ORDO_CONFIG): flag over variable over file over default,
# refused files (unknown key, bad value, bad syntax, missing) exit 2 naming the key, and
# packaging/ordo.toml names every serve option and starts a server.
ordo_vitest(config_file blackbox/config_file.test.mjs)

# Installing (cmake --install / make install: layout, stripped binary, the unit's paths, the
# config file kept, nothing in the real /etc) and the Debian package (cpack; control fields,
# conffile, maintainer scripts, systemd-analyze verify and security, the unpacked binary serving).
add_test(NAME install_layout
         COMMAND sh ${ORDO_TESTS_DIR}/package/install_layout.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
add_test(NAME deb_package
         COMMAND sh ${ORDO_TESTS_DIR}/package/deb_package.sh ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
set_tests_properties(install_layout deb_package PROPERTIES TIMEOUT 180)

# Graceful shutdown: SSE readers get a last control event to resume from, long-polls are
# answered, in-flight writes are kept or refused, 1,000 readers, --shutdown-timeout, a second
# signal, the WAL checkpoint.
ordo_vitest(shutdown blackbox/shutdown.test.mjs)

# The session API: every endpoint and error path, events, idempotency, lifecycle.
ordo_vitest(sessions_api blackbox/sessions_api.test.mjs)

# Sessions under stress: 16 concurrent clients (also across SIGKILL), snapshot + tail equals
# the full history for random interleavings, and the reaper with short timeouts and restarts.
ordo_vitest(sessions_concurrency blackbox/sessions_concurrency.test.mjs)
ordo_vitest(sessions_property blackbox/sessions_property.test.mjs)
ordo_vitest(sessions_reaper blackbox/sessions_reaper.test.mjs)

# The change feed (every mutating route produces exactly its events, filters, snapshot plus
# tail, retention with 410) and PR observations with the CI brake.
ordo_vitest(changes_feed blackbox/changes_feed.test.mjs)
ordo_vitest(pull_requests blackbox/pull_requests.test.mjs)

# Storage faults: a full disk (on a small tmpfs the test mounts; needs root, as in CI).
ordo_vitest(storage_faults blackbox/storage_faults.test.mjs)

# The database file replaced under a running server: a valid file adopted, an invalid one refused.
ordo_vitest(file_replacement blackbox/file_replacement.test.mjs)

# PostgreSQL storage (issue 20), against a scratch cluster of the test's own
# (tests/support/postgres.mjs): `ordo migrate` and `ordo doctor` with --storage. Under CI
# (ORDO_REQUIRE_POSTGRES=1) a machine without PostgreSQL fails it instead of skipping it.
ordo_vitest(postgres_cli blackbox/postgres_cli.test.mjs)
# Two nodes on one database, each addressed directly: cross-node reads and live delivery,
# producers through both nodes, kill -9 of a node, PostgreSQL going away and coming back.
ordo_vitest(postgres_cluster blackbox/postgres_cluster.test.mjs)
# The session, change-feed and PR suites against two nodes on PostgreSQL behind nginx
# round-robin (ORDO_TEST_STORAGE=postgres-cluster: support/ordo_server.mjs starts a cluster for
# every server a suite asks for), and the sessions' concurrency and crash suite against one node
# on PostgreSQL.
foreach(suite sessions_api changes_feed pull_requests)
  ordo_vitest(${suite}_postgres_cluster blackbox/${suite}.test.mjs
              ENV ORDO_TEST_STORAGE=postgres-cluster TIMEOUT 600)
endforeach()
ordo_vitest(sessions_concurrency_postgres blackbox/sessions_concurrency.test.mjs
            ENV ORDO_TEST_STORAGE=postgres TIMEOUT 600)

# Delivery under stress: a reader that never reads beside 500 that do (cut off, resumes exactly,
# bounded server memory), 2,000 readers reconnecting at once from old offsets after a restart
# (/health and live delivery stay prompt, each catches up exactly once), --max-connections and
# the catch-up admission.
ordo_vitest(delivery_stress blackbox/delivery_stress.test.mjs)

# The C++ client: the `ordo` client commands against a real server, and interop with the
# official @durable-streams/client.
ordo_vitest(cli_client blackbox/cli_client.test.mjs)

# HTTPS (--tls-cert/--tls-key): the client commands with and without --cacert, the official
# client trusting a test CA, a SIGHUP certificate swap under an open SSE reader, plain HTTP and
# TLS 1.1 refused, a silent client cut after --idle-timeout, bad TLS flags refused at startup.
ordo_vitest(tls blackbox/tls.test.mjs)

# Delivery through a fault-injecting TCP proxy: 10,000 messages from the C++ producer exactly
# once and in order; SSE and long-poll readers through the same proxy see each once.
ordo_vitest(fault_proxy blackbox/fault_proxy.test.mjs)

# The load generator against a server that closes every connection after its answer.
ordo_vitest(ordo_bench blackbox/ordo_bench.test.mjs)

# The benchmark harness, briefly (bench/run.mjs --quick): checks that it runs against ordo and
# the reference server and writes its report, not how fast anything is.
add_test(NAME bench_smoke
         COMMAND node ${CMAKE_SOURCE_DIR}/bench/run.mjs --quick
                 --out ${CMAKE_BINARY_DIR}/bench-smoke/BENCHMARKS.md
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(bench_smoke PROPERTIES
  ENVIRONMENT "ORDO_BUILD_DIR=${CMAKE_BINARY_DIR}"
  TIMEOUT 600)

# The dashboard (issue 8): its files served from the binary (Content-Type, ETag and 304, 404 and
# 405) and the stream list; `ordo demo` producing the session it promises; and the page itself in
# Debian's Chromium, headless, through playwright-core (live lists, transcript order and in-place
# updates, a server restart with no duplicate, a double-clicked Send making one command).
# Screenshots go to test-output/dashboard in the build directory.
ordo_vitest(dashboard_assets blackbox/dashboard_assets.test.mjs)
# The Server view's arithmetic (web/js/metrics.js) in node: the Prometheus text format, counter
# rates across restarts, quantiles from histogram buckets as histogram_quantile() computes them.
ordo_vitest(dashboard_metrics blackbox/dashboard_metrics.test.mjs)
ordo_vitest(demo blackbox/demo.test.mjs)
ordo_vitest(dashboard_browser browser/dashboard.test.mjs
            ENV ORDO_TEST_OUTPUT=${CMAKE_BINARY_DIR}/test-output)
# The Server view (issue 15) in Chromium: appends move the throughput chart, the table shows the
# server's values, leaving the view stops reading /metrics, a server away says so and a restart
# (counters from zero) draws no negative rate.
ordo_vitest(dashboard_server_page browser/server_page.test.mjs
            ENV ORDO_TEST_OUTPUT=${CMAKE_BINARY_DIR}/test-output)
# The dashboard with authentication on (issue 18): sign in, watch live, send a command, sign
# out; the cookie is HttpOnly and SameSite=Strict, and without the page's header it writes nothing.
ordo_vitest(dashboard_auth browser/dashboard_auth.test.mjs
            ENV ORDO_TEST_OUTPUT=${CMAKE_BINARY_DIR}/test-output)

# /metrics (issue 15): promtool accepts the exposition, each metric moves with what it counts, and
# a real Prometheus scrapes ordo under load and answers the append rate and the fsync p99.
ordo_vitest(metrics blackbox/metrics.test.mjs)

# The front door (issue 15): what each set-up command installs, and the npm lock accepted by
# `npm ci` with an empty cache.
ordo_vitest(setup blackbox/setup.test.mjs)

# Slow clients: headers dribbled a byte at a time cut at --header-timeout, a stalled body at
# --body-timeout, a flood of idle connections past --max-connections answered 503 and closed at
# its timeouts, and other clients served throughout.
ordo_vitest(slow_clients blackbox/slow_clients.test.mjs)

# The hostile-input probe's defects, one regression test each (issue 16): request smuggling
# through Transfer-Encoding, Host missing or not an authority, bytes that are not UTF-8 in names
# and in echoed errors, and Stream-Forked-From percent-decoded.
ordo_vitest(hostile_input blackbox/hostile_input.test.mjs)

# Authentication and scopes (issue 18): every route the server lists x seven credentials (none,
# expired, forged, alg:none, wrong audience, wrong scope, right scope); an agent token confined
# to its session; API tokens created and revoked while the server runs; the dashboard's cookie
# and its header; no public bind without authentication.
ordo_vitest(auth_scopes blackbox/auth_scopes.test.mjs)

# Clang's thread-safety analysis (the `thread-safety` preset, which `make test` builds) rejects
# an unguarded read, a call that needs a lock, and a read after unlock(), and accepts the ways
# ordo takes its locks.
add_test(NAME thread_safety_analysis
         COMMAND sh ${ORDO_TESTS_DIR}/thread_safety/check.sh ${CMAKE_SOURCE_DIR})
set_tests_properties(thread_safety_analysis PROPERTIES TIMEOUT 120)

# Comments and docs name only files that exist (a split or rename leaves no stale pointer).
ordo_vitest(file_references blackbox/file_references.test.mjs)
