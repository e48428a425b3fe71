#!/usr/bin/env bash
# qmoe data on a user CSV file: text and --json output.
# Usage: data_csv.sh QMOE_BINARY SOURCE_DIR
set -eu
source "$(dirname "$0")/common.bash" "$@"
printf 'f1,f2,f3,label\n0.5,1,2,7\n-1,0,3,3\n2.5,1,1,7\n' >"$tmp/train.csv"
printf '0,0,0,3\n1,1,1,3\n' >"$tmp/test.csv"
"$QMOE" data "$tmp/train.csv" --test-csv "$tmp/test.csv" --json >"$tmp/out.json"
/usr/bin/python3 - "$tmp/out.json" <<'PY' || fail "unexpected JSON: $(cat "$tmp/out.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["features"] == 3, j
assert j["classes"] == 2, j
assert j["class_names"] == ["3", "7"], j
assert j["train"] == {"0": 1, "1": 2}, j
assert j["test"] == {"0": 2, "1": 0}, j
assert j["min"] == -1 and j["max"] == 3, j
PY
"$QMOE" data "$tmp/train.csv" >"$tmp/out.txt"
grep -q '^features  3' "$tmp/out.txt" || fail "text output: $(cat "$tmp/out.txt")"
grep -q '^total .* 3 *0$' "$tmp/out.txt" || fail "text totals: $(cat "$tmp/out.txt")"
# train on the CSV with its own test file (no --val needed); eval reads the same test file
"$QMOE" train --task "$tmp/train.csv" --test-csv "$tmp/test.csv" --model qnn --qubits 4 --epochs 1 \
  --threads 1 --out "$tmp/run" >"$tmp/tr.out" 2>"$tmp/err" || fail "train --test-csv: $(cat "$tmp/err")"
grep -q '3 train / 2 test samples' "$tmp/err" || fail "train --test-csv: $(cat "$tmp/err")"
"$QMOE" eval --checkpoint "$tmp/run" --json >"$tmp/ev.json" 2>"$tmp/err" || fail "eval: $(cat "$tmp/err")"
/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["samples"] == 2, j["samples"]' "$tmp/ev.json" ||
  fail "eval did not use the test CSV"
# the CSV task's features are not scaled: config.json and eval say so
/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["task"]["scaling"] == "none", j["task"]' \
  "$tmp/run/config.json" || fail "config.json scaling: $(cat "$tmp/run/config.json")"
/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["task"]["scaling"] == "none", j["task"]' \
  "$tmp/ev.json" || fail "eval --json scaling: $(cat "$tmp/ev.json")"
# the test CSV is read for the test split only: after it moves, the training split still evaluates
mv "$tmp/test.csv" "$tmp/moved.csv"
"$QMOE" eval --checkpoint "$tmp/run" --split train --json >"$tmp/ev2.json" 2>"$tmp/err" ||
  fail "eval --split train without the test CSV: $(cat "$tmp/err")"
/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["samples"] == 3, j["samples"]' "$tmp/ev2.json" ||
  fail "eval --split train: $(cat "$tmp/ev2.json")"
set +e  # expect_error runs commands that fail
expect_error 1 "test.csv" -- "$QMOE" eval --checkpoint "$tmp/run"
mv "$tmp/moved.csv" "$tmp/test.csv"
# --scaling is for image tasks
expect_error 1 "features of CSV task .* are used as they are" -- "$QMOE" train --task "$tmp/train.csv" --test-csv "$tmp/test.csv" --scaling pi --model qnn --qubits 4 --epochs 1 --out "$tmp/r4"
expect_error 1 "features of CSV task .* are used as they are" -- "$QMOE" data "$tmp/train.csv" --scaling unit
# a directory instead of a file, a test CSV with a built-in task, the default
# (quadrant) routing encoder on non-image features: one clear error line each
expect_error 1 "is a directory" -- "$QMOE" data "$tmp/train.csv" --test-csv "$tmp"
mkdir "$tmp/dir.csv"
expect_error 1 "is a directory" -- "$QMOE" data "$tmp/dir.csv"
expect_error 1 "test CSV file goes with a CSV task only" -- "$QMOE" train --task mnist4 --test-csv "$tmp/test.csv" --epochs 1 --out "$tmp/r2"
expect_error 1 "use --routing-encoder full or joint" -- "$QMOE" train --task "$tmp/train.csv" --test-csv "$tmp/test.csv" --qubits 4 --epochs 1 --out "$tmp/r3"
echo "data_csv: ok"
