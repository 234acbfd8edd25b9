#!/usr/bin/env bash
# The whole suite: a warnings-as-errors build with every test (unit, integration, seed replay),
# then a clang AddressSanitizer + UndefinedBehaviorSanitizer build running the unit tests, the
# server's and CLI's integration suites against its binaries, and a bounded libFuzzer run of every
# fuzz target; then checks that the tests reading ../shared skip
# cleanly without it. Ends with one line: "N passed, N failed, N skipped" (pytest cases counted
# one by one, so a skip is never silent; scripts/count_tests.py).
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
failed=0 # set-up failures outside ctest
logs=()
counts=$PWD/build/test-counts
rm -rf "$counts"
export RILL_TEST_COUNTS=$counts

run_ctest() { # dir, log, ctest args...
    local dir=$1 log=$2; shift 2
    (cd "$dir" && ctest --output-on-failure -j"$jobs" "$@") 2>&1 | tee "$log"
    logs+=("$log")
}

summary() {
    echo
    /usr/bin/python3 scripts/count_tests.py "$counts" "${logs[@]}" --extra-failed "$failed" \
        --extra-passed "${extra_passed:-0}"
}

mkdir -p build
cmake -S . -B build -DRILL_WERROR=ON >build/cmake.log 2>&1 || { cat build/cmake.log; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
if ! cmake --build build -j"$jobs" 2>&1 | tail -n 40; then :; fi
if [[ ! -x build/rill ]] || ! cmake --build build -j"$jobs" >/dev/null 2>&1; then
    echo "build failed"; echo "0 passed, 1 failed, 0 skipped"; exit 1
fi
run_ctest build build/ctest.log

mkdir -p build-asan
CC=clang cmake -S . -B build-asan -DRILL_WERROR=ON -DRILL_SANITIZE=ON -DRILL_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug >build-asan/cmake.log 2>&1 || { cat build-asan/cmake.log; failed=$((failed + 1)); }
if cmake --build build-asan -j"$jobs" 2>&1 | tail -n 40 && cmake --build build-asan -j"$jobs" >/dev/null 2>&1; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build-asan build-asan/ctest.log -L 'unit|fuzz'
    # apart from the fuzzers, which would take both cores from the timed parts of these suites
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build-asan build-asan/ctest-integration.log -L asan_integration
else
    echo "sanitizer build failed"; failed=$((failed + 1))
fi

# A clone with nothing beside it: every integration module still collects, and those that read
# ../shared skip with their reason instead of erroring (CI always has ../shared, so look here).
bare=$(mktemp -d)
extra_passed=0
if RILL_SHARED=$bare RILL_TEST_COUNTS= RILL_BIN=$PWD/build/rill RILL_BUILD=$PWD/build \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider --collect-only tests/integration >"$bare.log" 2>&1 &&
    RILL_SHARED=$bare RILL_TEST_COUNTS= RILL_BIN=$PWD/build/rill RILL_BUILD=$PWD/build \
    /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider tests/integration/test_hpack_stories.py \
    >>"$bare.log" 2>&1 && ! grep -qE '[0-9]+ (passed|failed|error)' "$bare.log"; then
    echo "bare clone: every integration module collects; the ../shared tests skip without it"
    extra_passed=1
else
    echo "bare clone check failed:"; tail -n 30 "$bare.log"; failed=$((failed + 1))
fi
rm -rf "$bare" "$bare.log"

summary
