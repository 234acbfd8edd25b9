#!/usr/bin/env bash
# The whole suite: a warnings-as-errors build with every test (unit, integration, seed replay),
# then a clang AddressSanitizer + UndefinedBehaviorSanitizer build running the unit tests and a
# bounded libFuzzer run of every fuzz target. Ends with one line: "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
passed=0
failed=0

count() { # parse ctest's summary line: "NN% tests passed, F tests failed out of T"
    local log=$1 line f t
    line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [[ -z "$line" ]]; then failed=$((failed + 1)); return; fi
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    passed=$((passed + t - f))
    failed=$((failed + f))
}

run_ctest() { # dir, log, ctest args...
    local dir=$1 log=$2; shift 2
    (cd "$dir" && ctest --output-on-failure -j"$jobs" "$@") 2>&1 | tee "$log"
    count "$log"
}

mkdir -p build
cmake -S . -B build -DRILL_WERROR=ON >build/cmake.log 2>&1 || { cat build/cmake.log; echo "0 passed, 1 failed"; exit 1; }
if ! cmake --build build -j"$jobs" 2>&1 | tail -n 40; then :; fi
if [[ ! -x build/rill ]] || ! cmake --build build -j"$jobs" >/dev/null 2>&1; then
    echo "build failed"; echo "0 passed, 1 failed"; exit 1
fi
run_ctest build build/ctest.log

mkdir -p build-asan
CC=clang cmake -S . -B build-asan -DRILL_WERROR=ON -DRILL_SANITIZE=ON -DRILL_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug >build-asan/cmake.log 2>&1 || { cat build-asan/cmake.log; failed=$((failed + 1)); }
if cmake --build build-asan -j"$jobs" 2>&1 | tail -n 40 && cmake --build build-asan -j"$jobs" >/dev/null 2>&1; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        run_ctest build-asan build-asan/ctest.log -L 'unit|fuzz'
else
    echo "sanitizer build failed"; failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
