#!/usr/bin/env bash
# Compare two builds on the 10-qubit circuit and `qmoe bench`, alternating
# them so that both see the same machine load (these machines are shared).
#   bench/compare.sh BASE_BUILD_DIR NEW_BUILD_DIR [ROUNDS] [THREADS]
# Prints, per round and binary, the minimum us/sample over 5 repetitions of
# forward and forward + backward (double and float, batch 256) and the
# training rows of `qmoe bench`.
set -euo pipefail
base=${1:?base build dir}
new=${2:?new build dir}
rounds=${3:-3}
threads=${4:-2}

circuit() {  # BUILD_DIR: "f64 fwd, f64 fwd+bwd, f32 fwd, f32 fwd+bwd" (us/sample)
  OMP_NUM_THREADS=$threads "$1/qmoe_bench" --benchmark_filter='BM_Circuit10q_f(64|32)/256/' \
    --benchmark_min_time=0.2 --benchmark_repetitions=5 --benchmark_format=json 2>/dev/null |
    /usr/bin/python3 -c '
import json, sys
best = {}
for b in json.load(sys.stdin)["benchmarks"]:
    if b.get("run_type") != "iteration": continue
    name = b["run_name"]
    v = b["us_per_sample"] * 1e6  # the counter is in seconds
    best[name] = min(best.get(name, 1e300), v)
print("  ".join("%s %.1f" % (k.replace("BM_Circuit10q_", "").replace("/real_time", ""), v) for k, v in sorted(best.items())))'
}

for r in $(seq "$rounds"); do
  for dir in "$base" "$new"; do
    echo "round $r $dir ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
    echo "  circuit us/sample: $(circuit "$dir")"
    OMP_NUM_THREADS=$threads "$dir/qmoe" bench --seconds 0.7 | grep train | sed 's/^/  /'
  done
done
