# ordo — common tasks. `make run` and `make test` are the two set-up commands (see README).
.PHONY: bootstrap build build-asan run test test-unit bench fmt clean

JOBS ?= $(shell nproc)
HOST ?= 127.0.0.1
PORT ?= 4437
DATA_DIR ?= ./data

bootstrap:
	@scripts/bootstrap

build: bootstrap
	@cmake --preset release >/dev/null
	@cmake --build --preset release -j $(JOBS)

# Unit tests only, under AddressSanitizer + UndefinedBehaviorSanitizer (no server build).
build-asan: bootstrap
	@cmake --preset asan -DORDO_BUILD_SERVER=OFF >/dev/null
	@cmake --build --preset asan -j $(JOBS) --target ordo_unit_tests

run: build
	./build/release/ordo serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

test: build build-asan
	ctest --preset asan
	ctest --preset release

# ordo beside the Durable Streams reference server, every scenario, alternating; writes
# docs/BENCHMARKS.md and its charts (about 40 minutes). BENCH_ARGS=--quick for a short run.
bench: build
	node bench/run.mjs $(BENCH_ARGS)

test-unit: build
	./build/release/ordo_unit_tests

fmt:
	@git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build
