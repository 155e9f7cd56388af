# ordo — common tasks. `make run` and `make test` are the two set-up commands (see README).
.PHONY: bootstrap bootstrap-test build build-server build-asan build-thread-safety build-fuzz fuzz \
	run test test-unit bench fmt clean \
	install package

JOBS ?= $(shell nproc)
HOST ?= 127.0.0.1
PORT ?= 4437
DATA_DIR ?= ./data
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?= $(patsubst fuzz/%.cpp,%,$(wildcard fuzz/*.cpp))
PREFIX ?= /usr/local

# What building and serving need; bootstrap-test adds what the test suites need.
bootstrap:
	@scripts/bootstrap

bootstrap-test:
	@scripts/bootstrap --test

# The server alone: what `make run` needs (no GoogleTest, Node.js or browser).
build-server: bootstrap
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS) --target ordo

# Everything, tests included.
build: bootstrap-test
	@cmake --preset release -DORDO_BUILD_TESTS=ON >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Under AddressSanitizer + UndefinedBehaviorSanitizer: the unit tests and the server, which
# `ctest --preset asan` runs the main black-box suites against (tests/tests.cmake).
build-asan: bootstrap-test
	@cmake --preset asan -DORDO_BUILD_SERVER=ON -DORDO_BUILD_TESTS=ON >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target ordo ordo_unit_tests ordo_http_tests

# The libFuzzer harnesses of fuzz/ (clang, with ASan + UBSan).
build-fuzz: bootstrap-test
	@cmake --preset fuzz >/dev/null
	@cmake --build --preset fuzz -j $(JOBS)

# Runs every harness for FUZZ_SECONDS on a scratch copy of its seed corpus (fuzz/corpus/<name>,
# left as committed); a crash stops with the input saved in build/fuzz/runs/<name>/.
fuzz: build-fuzz
	@set -e; for h in $(FUZZ_HARNESSES); do \
	  echo "fuzz: $$h for $(FUZZ_SECONDS) s"; \
	  rm -rf build/fuzz/runs/$$h && mkdir -p build/fuzz/runs/$$h/corpus && \
	  cp fuzz/corpus/$$h/* build/fuzz/runs/$$h/corpus/ && \
	  (cd build/fuzz/runs/$$h && ASAN_OPTIONS=abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    ../../fuzz_$$h -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	    $(FUZZ_ARGS) corpus); \
	done

# Clang's thread-safety analysis over every library (GUARDED_BY and REQUIRES, base/
# thread_annotations.hpp): compiled with -Wthread-safety -Werror, nothing linked.
build-thread-safety: bootstrap-test
	@cmake --preset thread-safety >/dev/null
	@cmake --build --preset thread-safety -j $(JOBS)

run: build-server
	./build/release/ordo serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# The server (stripped), its systemd unit and config file, and the client library, under PREFIX;
# the config file goes to /etc/ordo when PREFIX is /usr (docs/OPERATIONS.md, "Installing as a
# service"). DESTDIR=dir stages the install under dir.
install: build-server
	DESTDIR=$(DESTDIR) cmake --install build/release --prefix $(PREFIX)

# The Debian package of the server, from the release build; prints its path
# (build/release/ordo_<version>_<arch>.deb).
package: build-server
	@scripts/bootstrap --package
	@cd build/release && cpack -G DEB >cpack.log 2>&1 || { cat cpack.log; exit 1; }
	@sed -n 's/^CPack: - package: \(.*\) generated\.$$/\1/p' build/release/cpack.log

test: build build-asan build-thread-safety build-fuzz
	ctest --preset fuzz
	ctest --preset asan
	ctest --preset release

# ordo beside the Durable Streams reference server, every scenario, alternating; writes
# docs/BENCHMARKS.md and its charts (about 40 minutes). BENCH_ARGS=--quick for a short run.
bench: bootstrap-test build
	node bench/run.mjs $(BENCH_ARGS)

test-unit: build
	./build/release/ordo_unit_tests

fmt:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
