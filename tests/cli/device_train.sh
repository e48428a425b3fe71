#!/usr/bin/env bash
# Training as a device would (issue 18 part 4): `train --shots N` (parameter
# shift from shots) and noise-aware training (--depol2 ... at train time) run,
# are reproducible for a seed, are recorded in the checkpoint, resume exactly,
# and bad combinations are refused.
# Usage: device_train.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

small=(--train-limit 40 --test-limit 20 --batch 20 --qubits 4 --depth 1 --experts 2 --threads 2 --seed 5)

# shots: implies param-shift, reproducible, in config.json
for r in a b; do
  "$QMOE" train "${small[@]}" --epochs 1 --shots 50 --out "$tmp/s$r" >"$tmp/s$r.out" 2>"$tmp/s$r.err" ||
    fail "train --shots: $(cat "$tmp/s$r.err")"
done
cmp -s "$tmp/sa/metrics.csv" "$tmp/sb/metrics.csv" ||
  [ "$(cut -d, -f1-5 "$tmp/sa/metrics.csv")" = "$(cut -d, -f1-5 "$tmp/sb/metrics.csv")" ] ||
  fail "train --shots is not reproducible"
"$PY" - "$tmp/sa/config.json" <<'PYEOF' || fail "shots not recorded"
import json, sys
t = json.load(open(sys.argv[1]))["train"]
assert t["shots"] == 50 and t["gradient"] == "param-shift" and t["noise"] is None, t
PYEOF

# noise-aware: recorded, differs from exact training, resumes to the uninterrupted numbers
"$QMOE" train "${small[@]}" --epochs 2 --depol2 0.02 --amp-damping 0.01 --out "$tmp/n" >/dev/null 2>"$tmp/n.err" ||
  fail "noise-aware train: $(cat "$tmp/n.err")"
"$QMOE" train "${small[@]}" --epochs 1 --depol2 0.02 --amp-damping 0.01 --out "$tmp/r" >/dev/null 2>&1 ||
  fail "noise-aware train (1 epoch)"
"$QMOE" train "${small[@]}" --epochs 2 --depol2 0.02 --amp-damping 0.01 --out "$tmp/r" --resume >/dev/null 2>"$tmp/r.err" ||
  fail "noise-aware resume: $(cat "$tmp/r.err")"
[ "$(cut -d, -f1-5 "$tmp/n/metrics.csv")" = "$(cut -d, -f1-5 "$tmp/r/metrics.csv")" ] ||
  fail "noise-aware training resumed differs from uninterrupted"
"$QMOE" train "${small[@]}" --epochs 2 --out "$tmp/e" >/dev/null 2>&1 || fail "exact train"
[ "$(cut -d, -f1-5 "$tmp/n/metrics.csv")" != "$(cut -d, -f1-5 "$tmp/e/metrics.csv")" ] ||
  fail "noise-aware training gave the exact run's numbers"
"$PY" - "$tmp/n/config.json" <<'PYEOF' || fail "noise not recorded"
import json, sys
n = json.load(open(sys.argv[1]))["train"]["noise"]
assert n["depol2"] == 0.02 and n["amp_damping"] == 0.01, n
PYEOF
# resuming with other noise is refused (it is a setting of the run)
expect_error 1 "depol2" -- "$QMOE" train "${small[@]}" --epochs 3 --depol2 0.05 --out "$tmp/n" --resume

expect_error 1 "parameter-shift" -- "$QMOE" train "${small[@]}" --epochs 1 --shots 10 --gradient adjoint --out "$tmp/x"
expect_error 2 "shots" -- "$QMOE" train "${small[@]}" --epochs 1 --shots -3 --out "$tmp/x"
echo "device training: ok"
