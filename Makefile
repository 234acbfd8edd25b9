# Thin wrapper over CMake. `make` builds build/rill; `make run` and `make test` also install
# whatever Debian packages are missing (as root), so they work on a fresh Debian 12 machine.
JOBS := $(shell nproc)
BUILD := build
PREFIX ?= /usr/local

.PHONY: all build run test bench fuzz format clean install docs deps-build deps-test deps-bench deps-docs

all: build

deps-build:
	@scripts/setup.sh build
deps-test:
	@scripts/setup.sh test
deps-bench:
	@scripts/setup.sh bench
deps-docs:
	@scripts/setup.sh docs

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: deps-build build
	./$(BUILD)/rill serve

# rill, librill.so/.a, include/rill/*.h, rill.pc and rill(1) under PREFIX (DESTDIR for staging).
install: deps-build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)
	@DESTDIR=$(DESTDIR) cmake --install $(BUILD)

# API reference from the public headers: $(BUILD)/docs/api/html/index.html (docs/Doxyfile).
docs: deps-docs
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) --target docs

test: deps-test
	@scripts/test.sh

bench: deps-bench
	@cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DRILL_BENCH=ON -DRILL_TESTS=OFF >/dev/null
	@cmake --build build-bench -j$(JOBS)
	@bench/run.sh build-bench

# A longer fuzzing session: FUZZ_SECONDS per target (default 300).
fuzz: deps-test
	@CC=clang cmake -S . -B build-fuzz -DRILL_SANITIZE=ON -DRILL_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
		-DRILL_FUZZ_SECONDS=$${FUZZ_SECONDS:-300} >/dev/null
	@cmake --build build-fuzz -j$(JOBS)
	@cd build-fuzz && ctest --output-on-failure -L fuzz

format:
	@clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-bench build-fuzz
