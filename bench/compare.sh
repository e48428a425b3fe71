#!/usr/bin/env bash
# Compare two builds on the 10-qubit circuit and `qmoe bench`, alternating
# them so that both see the same machine load (these machines are shared).
#   bench/compare.sh BASE_BUILD_DIR NEW_BUILD_DIR [ROUNDS] [THREADS]
# Prints, per round and binary, the minimum us/sample over 5 repetitions of
# the forward (mode 0), forward() then backward() (1) and forward_backward()
# (2; builds from before round 8 lack it), double and float, batch 256, and the
# training rows of `qmoe bench`; then, per binary, the minimum and first
# quartile of the circuit figures over the rounds.
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

summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
for r in $(seq "$rounds"); do
  for dir in "$base" "$new"; do
    echo "round $r $dir ($(date -u +%H:%M:%S), load $(cut -d' ' -f1 /proc/loadavg))"
    line=$(circuit "$dir")
    echo "  circuit us/sample: $line"
    echo "$dir $line" >>"$summary"
    OMP_NUM_THREADS=$threads "$dir/qmoe" bench --seconds 0.7 | grep train | sed 's/^/  /'
  done
done
# The host's load changes from minute to minute: the minimum and first quartile
# over the rounds are the figures to compare.
echo "over $rounds rounds, circuit us/sample (min / first quartile):"
/usr/bin/python3 - "$summary" <<'PY'
import collections, sys
vals = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d, *rest = line.split()
    for name, v in zip(rest[::2], rest[1::2]):
        vals[(d, name)].append(float(v))
for (d, name), v in sorted(vals.items(), key=lambda kv: (kv[0][1], kv[0][0])):
    v.sort()
    print("  %-14s %-40s %6.1f / %6.1f" % (name, d, v[0], v[len(v) // 4]))
PY
