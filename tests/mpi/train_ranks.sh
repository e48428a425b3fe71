#!/usr/bin/env bash
# mpirun -np K qmoe train gives the numbers of one process, bit for bit:
# metrics.csv (all but the seconds) and the final parameters and Adam moments,
# for 2 ranks with 1 chunk each, and for 2 ranks sharing 3 chunks unevenly
# (the last batch has 1 chunk: one rank then has none); the rank count and the
# threads inside each do not matter. Rank 0 alone writes.
# Usage: train_ranks.sh QMOE_BINARY SOURCE_DIR MPIEXEC
source "$(dirname "$0")/common.bash" "$@"
same() {  # same DIR_A DIR_B: identical metrics (but seconds) and state
  cut -d, -f1-5 "$1/metrics.csv" >"$tmp/a"
  cut -d, -f1-5 "$2/metrics.csv" >"$tmp/b"
  cmp -s "$tmp/a" "$tmp/b" || fail "metrics.csv differ ($1, $2): $(diff "$tmp/a" "$tmp/b")"
  "$PY" - "$1/checkpoint" "$2/checkpoint" <<'PYEOF' || fail "final states differ: $1 $2"
import json, sys
a, b = (json.load(open(f))["state"] for f in sys.argv[1:])
assert a["epoch"] == b["epoch"] > 0
assert a["theta"] == b["theta"], max(abs(x - y) for x, y in zip(a["theta"], b["theta"]))
assert a["adam"] == b["adam"]
assert a["rng"] == b["rng"]
PYEOF
}
for batch in 32 48; do
  args=(--train-limit 200 --test-limit 50 --epochs 2 --batch "$batch" --seed 5 --threads 1)
  "$QMOE" train "${args[@]}" --out "$tmp/one$batch" >"$tmp/out1" 2>"$tmp/err1" || fail "1 process: $(cat "$tmp/err1")"
  "${MPIRUN[@]}" -np 2 "$QMOE" train "${args[@]}" --out "$tmp/two$batch" >"$tmp/out2" 2>"$tmp/err2" ||
    fail "2 ranks: $(cat "$tmp/err2")"
  same "$tmp/one$batch" "$tmp/two$batch"
  cmp -s "$tmp/out1" "$tmp/out2" || fail "2 ranks printed '$(cat "$tmp/out2")', 1 process '$(cat "$tmp/out1")'"
  [ "$(grep -c '^epoch 2/2' "$tmp/err2")" -eq 1 ] || fail "2 ranks: epoch lines not once: $(cat "$tmp/err2")"
  grep -q '^2 ranks: [0-9]* gathers' "$tmp/err2" || fail "2 ranks: no communication summary: $(cat "$tmp/err2")"
done
# 3 ranks with 2 threads each (more workers than some batches' chunks)
"${MPIRUN[@]}" -np 3 "$QMOE" train --train-limit 200 --test-limit 50 --epochs 2 --batch 48 --seed 5 --threads 2 \
  --out "$tmp/three" >/dev/null 2>"$tmp/err3" || fail "3 ranks: $(cat "$tmp/err3")"
same "$tmp/one48" "$tmp/three"
ls "$tmp/two32"/*.tmp >/dev/null 2>&1 && fail "temporary files left behind"
echo "train_ranks: ok"
