#!/usr/bin/env bash
# qmoe eval / predict / export: bad input gives one "qmoe: error: ..." line, a
# non-zero exit and no (partial) output file.
# Usage: inspect_errors.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"


"$QMOE" train --train-limit 100 --test-limit 20 --epochs 1 --threads 1 --qubits 4 --out "$tmp/run" \
  >/dev/null 2>"$tmp/err" || fail "train failed: $(cat "$tmp/err")"
ck="$tmp/run/checkpoint"

# missing and damaged checkpoints
for cmd in eval "predict --index 0" "export --index 0 --qasm $tmp/a.qasm"; do
  # shellcheck disable=SC2086
  expect_error 1 "checkpoint $tmp/none does not exist" -- "$QMOE" $cmd --checkpoint "$tmp/none"
done
head -c 200 "$ck" >"$tmp/trunc"
expect_error 1 "checkpoint $tmp/trunc is damaged" -- "$QMOE" eval --checkpoint "$tmp/trunc"
echo '{"format":"something-else"}' >"$tmp/other"
expect_error 1 "not a qmoe checkpoint" -- "$QMOE" predict --checkpoint "$tmp/other" --index 0
/usr/bin/python3 -c '
import json, sys
j = json.load(open(sys.argv[1])); j["state"]["theta"] = j["state"]["theta"][:-1]
json.dump(j, open(sys.argv[2], "w"))  # edited, checksum kept: refused as damaged
del j["checksum"]; j["version"] = 1  # as a checkpoint from before the checksum: its fields are checked
json.dump(j, open(sys.argv[3], "w"))' "$ck" "$tmp/edited" "$tmp/short" || fail "python"
for cmd in eval "predict --index 0" "export --index 0 --qasm $tmp/a.qasm"; do
  # shellcheck disable=SC2086
  expect_error 1 "checkpoint $tmp/edited is damaged (checksum mismatch: changed or corrupted since it was written)" -- \
    "$QMOE" $cmd --checkpoint "$tmp/edited"
done
expect_error 1 "parameter count does not match" -- "$QMOE" export --checkpoint "$tmp/short" --index 0 --qasm "$tmp/a.qasm"
[ ! -e "$tmp/a.qasm" ] || fail "export wrote a file despite the error"

# index out of range (the checkpoint's test split holds 20 samples)
expect_error 1 "index 20 out of range: the test split of mnist4 has 20 samples (0..19)" -- \
  "$QMOE" predict --checkpoint "$ck" --index 20
expect_error 1 "index -1 out of range" -- "$QMOE" export --checkpoint "$ck" --index -1 --qasm "$tmp/a.qasm"
expect_error 1 "index 5 out of range" -- "$QMOE" predict --checkpoint "$ck" --index 5 --test-limit 5
[ ! -e "$tmp/a.qasm" ] || fail "export wrote a file despite the error"

# a task with another class count, an unknown task
expect_error 1 "task mnist2 has 2 classes, but the model in $ck has 4" -- "$QMOE" eval --checkpoint "$ck" --task mnist2
expect_error 1 "task mnist2 has 2 classes" -- "$QMOE" export --checkpoint "$ck" --task mnist2 --index 0 --qasm "$tmp/a.qasm"
expect_error 1 "unknown task 'mnist9'" -- "$QMOE" eval --checkpoint "$ck" --task mnist9
printf '1,2,0\n3,4,1\n' >"$tmp/two.csv"
expect_error 1 "has 2 classes" -- "$QMOE" eval --checkpoint "$ck" --task "$tmp/two.csv" --split train

# unwritable output: missing directory, a directory, a path below a regular file
expect_error 1 "cannot write $tmp/nodir/a.qasm" -- \
  "$QMOE" export --checkpoint "$ck" --index 0 --qasm "$tmp/nodir/a.qasm"
mkdir "$tmp/isdir"
expect_error 1 "cannot write $tmp/isdir" -- "$QMOE" export --checkpoint "$ck" --index 0 --qasm "$tmp/isdir"
[ -z "$(ls -A "$tmp/isdir")" ] || fail "files left in $tmp/isdir"
ls "$tmp"/isdir.tmp* >/dev/null 2>&1 && fail "temporary file left next to $tmp/isdir"
expect_error 1 "cannot write $tmp/two.csv/a.qasm" -- \
  "$QMOE" export --checkpoint "$ck" --index 0 --qasm "$tmp/two.csv/a.qasm"

# flags
expect_error 2 "checkpoint is required" -- "$QMOE" eval
expect_error 1 "give --index I" -- "$QMOE" predict --checkpoint "$ck"
expect_error 2 "qasm is required" -- "$QMOE" export --checkpoint "$ck" --index 0
expect_error 2 "split" -- "$QMOE" eval --checkpoint "$ck" --split validation

# an existing output file is replaced whole, never left half-written
printf 'old\n' >"$tmp/keep.qasm"
expect_error 1 "index 99 out of range" -- "$QMOE" export --checkpoint "$ck" --index 99 --qasm "$tmp/keep.qasm"
[ "$(cat "$tmp/keep.qasm")" = old ] || fail "failed export touched the existing output"
"$QMOE" export --checkpoint "$ck" --index 0 --qasm "$tmp/keep.qasm" 2>/dev/null || fail "export failed"
grep -q '^OPENQASM 2.0;' "$tmp/keep.qasm" || fail "export did not replace the file"
echo "inspect_errors: ok"
