#!/usr/bin/env bash
# The whole test suite (C++ tests and the CLI tests) built with clang's
# AddressSanitizer + UndefinedBehaviorSanitizer (float-cast-overflow included)
# in build-asan/. Every sanitizer report fails its test. Run by .ci/run after
# scripts/run-tests.sh (which installs the packages, clang among them).
# Usage: scripts/run-sanitizers.sh [ctest arguments, e.g. -R Qasm]
#
# Clones off (-DQMOE_TARGET_CLONES=OFF) and -O1: the sanitizers check the
# code's logic, which is the same in every instruction-set clone, and one copy
# at -O1 compiles in a fraction of the time and memory (times: docs/ci.md).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v clang++ >/dev/null 2>&1; then
  echo "run-sanitizers: clang++ not found (scripts/setup.sh installs it)" >&2
  exit 1
fi
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

cmake -S . -B build-asan -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
      -DQMOE_SANITIZE=ON -DQMOE_TARGET_CLONES=OFF -DQMOE_BUILD_BENCH=OFF -DQMOE_MPI=OFF "${launcher[@]}" >/dev/null
cmake --build build-asan -j2 --target qmoe qmoe_tests

# allocator_may_return_null: a refused huge allocation is std::bad_alloc (which
# qmoe reports in its words), as without ASan, not an ASan abort.
export ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# Tests of the Python package and of MPI run in the normal suite only (the
# extension module would need the ASan runtime preloaded into python3; the
# qmoe here is built without MPI, whose library LeakSanitizer would report).
ctest --test-dir build-asan --output-on-failure -j2 --timeout 1500 -E '^(py|python|mpi)[_.]' "$@"
