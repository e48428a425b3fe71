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
expect_error 1 "for the features of CSV task .* give none, standard or minmax" -- "$QMOE" train --task "$tmp/train.csv" --test-csv "$tmp/test.csv" --scaling pi --model qnn --qubits 4 --epochs 1 --out "$tmp/r4"
expect_error 1 "for the features of CSV task .* give none, standard or minmax" -- "$QMOE" data "$tmp/train.csv" --scaling unit
expect_error 1 "is for CSV features; the images of mnist2 take unit, tq or pi" -- "$QMOE" data mnist2 --scaling standard
# a directory instead of a file, a test CSV with a built-in task: one clear error line each
expect_error 1 "is a directory" -- "$QMOE" data "$tmp/train.csv" --test-csv "$tmp"
mkdir "$tmp/dir.csv"
expect_error 1 "is a directory" -- "$QMOE" data "$tmp/dir.csv"
expect_error 1 "test CSV file goes with a CSV task only" -- "$QMOE" train --task mnist4 --test-csv "$tmp/test.csv" --epochs 1 --out "$tmp/r2"

# Issue 16: CSV as users have it. String labels (names kept), RFC 4180 quoting,
# feature scaling fitted on the training split, the default model (a QMoE)
# trains on it, and predict --input writes predictions for an unlabelled file.
"$PY" - "$tmp" <<'PYEOF'
import csv, random, sys
random.seed(1)
rows = []
for i in range(150):
    name = ["setosa", "versi, color", 'vir"ginica'][i % 3]
    rows.append([100 + 10 * (i % 3) + random.random(), random.random() * 1000, name])
with open(sys.argv[1] + "/iris.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["sepal length", "width, mm", "species"]); w.writerows(rows)
with open(sys.argv[1] + "/new.csv", "w", newline="") as f:
    w = csv.writer(f); w.writerow(["sepal length", "width, mm"]); w.writerows([r[:2] for r in rows[:5]])
PYEOF
"$QMOE" data "$tmp/iris.csv" --scaling minmax --json >"$tmp/iris.json" || fail "data iris.csv"
"$PY" - "$tmp/iris.json" <<'PYEOF' || fail "CSV with string labels: $(cat "$tmp/iris.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["class_names"] == ["setosa", "versi, color", 'vir"ginica'] and j["train_total"] == 150, j
assert j["scaling"] == "minmax" and j["min"] == 0 and j["max"] == 1, j
PYEOF
"$QMOE" train --task "$tmp/iris.csv" --scaling minmax --val 0.2 --epochs 10 --lr 0.05 --qubits 4 --threads 1 --out "$tmp/iris" \
  --json >"$tmp/iris.out" 2>"$tmp/err" || fail "train on a CSV with the default model: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["accuracy_percent"] > 50, j' "$tmp/iris.out" ||
  fail "the default model did not learn 3 separable classes: $(cat "$tmp/iris.out")"
"$QMOE" predict --checkpoint "$tmp/iris" --input "$tmp/new.csv" --output "$tmp/pred.csv" 2>"$tmp/err" ||
  fail "predict --input: $(cat "$tmp/err")"
"$PY" - "$tmp/pred.csv" "$tmp/iris" <<'PYEOF' || fail "predictions CSV: $(cat "$tmp/pred.csv")"
import csv, json, subprocess, sys
rows = list(csv.reader(open(sys.argv[1])))
assert rows[0] == ["row", "predicted", "p_setosa", "p_versi, color", 'p_vir"ginica'], rows[0]
assert len(rows) == 6 and [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"], rows
for r in rows[1:]:
    p = [float(v) for v in r[2:]]
    assert abs(sum(p) - 1) < 1e-12 and r[1] == rows[0][2 + p.index(max(p))][2:], r
PYEOF
# the same rows through predict --index give the same probabilities (same scaling)
"$QMOE" predict --checkpoint "$tmp/iris" --split train --index 0 --json >"$tmp/p0.json" || fail "predict --index"
"$PY" - "$tmp/pred.csv" "$tmp/p0.json" <<'PYEOF' || fail "predict --input and --index disagree"
import csv, json, sys
rows = list(csv.reader(open(sys.argv[1]))); p = json.load(open(sys.argv[2]))
assert p["source_index"] == 0
assert max(abs(float(a) - b) for a, b in zip(rows[1][2:], p["probabilities"])) < 1e-12, (rows[1], p)
PYEOF
printf '1,2,0\n' >"$tmp/lab.csv"
expect_error 1 "lab.csv: 3 feature columns, the model .* takes 2 (predict --input takes features only" -- \
  "$QMOE" predict --checkpoint "$tmp/iris" --input "$tmp/lab.csv"
expect_error 1 "give --index I" -- "$QMOE" predict --checkpoint "$tmp/iris"
echo "data_csv: ok"
