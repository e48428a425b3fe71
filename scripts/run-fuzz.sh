#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.cpp, clang, the core instrumented
# with coverage + ASan + UBSan) in build-fuzz/ and runs each for a while on its
# seed corpus fuzz/corpus/<name>/ (inputs it finds go to build-fuzz/corpus/<name>/,
# a crashing input to build-fuzz/artifacts/<name>/). Fails if any target finds
# a crash, a leak, a timeout (> 20 s for one input) or an allocation above 2 GB.
# Usage: scripts/run-fuzz.sh [SECONDS per target, default 45] [NAME ...]
#   e.g. scripts/run-fuzz.sh 600 qasm csv     (a campaign; docs/fuzzing.md)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-45}
shift || true
if ! command -v clang++ >/dev/null 2>&1; then
  echo "run-fuzz: clang++ not found (scripts/setup.sh installs it)" >&2
  exit 1
fi
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do names+=("$(basename "$f" .cpp | sed 's/^fuzz_//')"); done
fi
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi

cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DQMOE_FUZZ=ON \
      -DQMOE_TARGET_CLONES=OFF -DQMOE_BUILD_TESTS=OFF -DQMOE_BUILD_BENCH=OFF -DQMOE_MPI=OFF "${launcher[@]}" >/dev/null
cmake --build build-fuzz -j2 --target "${names[@]/#/fuzz_}"

export ASAN_OPTIONS="detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
failed=()
for name in "${names[@]}"; do
  corpus=build-fuzz/corpus/$name
  artifacts=build-fuzz/artifacts/$name
  log=build-fuzz/fuzz-$name.log
  mkdir -p "$corpus" "$artifacts"
  args=(-max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1
        -artifact_prefix="$artifacts/")
  [ -f "fuzz/$name.dict" ] && args+=(-dict="fuzz/$name.dict")
  echo "-- fuzz_$name: ${seconds} s on fuzz/corpus/$name ($(ls "fuzz/corpus/$name" | wc -l) seeds)"
  if build-fuzz/fuzz_"$name" "${args[@]}" "$corpus" "fuzz/corpus/$name" >"$log" 2>&1; then
    # e.g. "#123456 DONE cov: 812 ft: 2301 corp: 211/19Kb exec/s: 2743 rss: 412Mb"
    grep -E '^#[0-9]+ +DONE' "$log" | tail -1 | sed "s/^/   fuzz_$name: /"
  else
    echo "   fuzz_$name FAILED (log: $log, input: $(ls "$artifacts" | head -1)); the end of its log:"
    grep -v '^#[0-9]' "$log" | tail -60
    failed+=("$name")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "run-fuzz: ${failed[*]} found a failure" >&2
  exit 1
fi
echo "run-fuzz: ${#names[@]} targets, ${seconds} s each, no failure"
