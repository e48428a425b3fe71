#!/usr/bin/env bash
# qmoe eval --split val reproduces the validation numbers of a `train --val`
# run (same held-out samples), and the default split stays the test split.
# Usage: inspect_val.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

"$QMOE" train --train-limit 300 --test-limit 40 --val 0.2 --seed 5 --epochs 1 --threads 1 --qubits 6 --out "$tmp/run" \
  >/dev/null 2>"$tmp/err" || fail "train --val: $(cat "$tmp/err")"
"$QMOE" eval --checkpoint "$tmp/run" --split val --json >"$tmp/val.json" 2>"$tmp/err" || fail "eval val: $(cat "$tmp/err")"
"$QMOE" eval --checkpoint "$tmp/run" --json >"$tmp/test.json" 2>"$tmp/err" || fail "eval test: $(cat "$tmp/err")"
"$PY" - "$tmp/val.json" "$tmp/test.json" "$tmp/run/metrics.csv" <<'PYEOF' || fail "eval --split val does not match training"
import csv, json, sys
v = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2])); r = list(csv.DictReader(open(sys.argv[3])))[-1]
assert v["task"]["split"] == "val" and v["samples"] == 60, v["samples"]
assert abs(v["accuracy_percent"] - float(r["val_accuracy_percent"])) < 1e-10 and abs(v["loss"] - float(r["val_loss"])) < 1e-8, (v, r)
assert t["task"]["split"] == "test" and t["samples"] == 40
PYEOF
"$QMOE" predict --checkpoint "$tmp/run" --split val --index 59 --json >/dev/null 2>"$tmp/err" || fail "predict val: $(cat "$tmp/err")"
"$QMOE" predict --checkpoint "$tmp/run" --split val --index 60 >/dev/null 2>"$tmp/err" && fail "index 60 of 60 accepted"
grep -q "^qmoe: error: index 60 out of range: the val split of mnist4 has 60 samples" "$tmp/err" || fail "$(cat "$tmp/err")"
"$QMOE" train --train-limit 50 --test-limit 10 --epochs 1 --threads 1 --qubits 4 --out "$tmp/noval" >/dev/null 2>&1 || fail "train"
"$QMOE" eval --checkpoint "$tmp/noval" --split val >/dev/null 2>"$tmp/err" && fail "--split val without --val accepted"
[ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -q "^qmoe: error: --split val needs" "$tmp/err" || fail "$(cat "$tmp/err")"
echo "inspect_val: ok"
