#!/usr/bin/env bash
# qmoe train: user errors give one "qmoe: error: ..." line and a non-zero exit.
# Usage: train_errors.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

small=(--train-limit 50 --test-limit 20 --threads 1 --qubits 4)

expect_error 2 "ops" -- "$QMOE" train "${small[@]}" --ops foo --out "$tmp/r1"
expect_error 2 "epochs" -- "$QMOE" train "${small[@]}" --epochs -1 --out "$tmp/r2"
expect_error 2 "model" -- "$QMOE" train "${small[@]}" --model cnn --out "$tmp/r3"
expect_error 2 "" -- "$QMOE" train "${small[@]}" --no-such-flag --out "$tmp/r4"
expect_error 1 "unknown task 'mnist9'" -- "$QMOE" train "${small[@]}" --task mnist9 --out "$tmp/r5"
expect_error 1 "missing data file $tmp/none/mnist" -- "$QMOE" train "${small[@]}" --data-dir "$tmp/none" --out "$tmp/r6"
for r in r1 r2 r3 r4 r5 r6; do
  [ ! -e "$tmp/$r" ] || fail "$r: output directory created despite the error"
done

# an existing checkpoint is not overwritten without --resume
"$QMOE" train "${small[@]}" --epochs 1 --out "$tmp/run" >/dev/null 2>"$tmp/err" || fail "train failed: $(cat "$tmp/err")"
cp "$tmp/run/checkpoint" "$tmp/ck.before"
expect_error 1 "already holds a checkpoint: pass --resume" -- "$QMOE" train "${small[@]}" --epochs 1 --out "$tmp/run"
cmp -s "$tmp/run/checkpoint" "$tmp/ck.before" || fail "checkpoint changed by the refused run"

# --resume of a damaged checkpoint
printf '{"format":"qmoe-checkpoint",' >"$tmp/run/checkpoint"
expect_error 1 "checkpoint $tmp/run/checkpoint is damaged" -- "$QMOE" train "${small[@]}" --epochs 2 --resume --out "$tmp/run"
# values that pass the option parser but not validation: nothing written
expect_error 1 "learning rate must be > 0" -- "$QMOE" train "${small[@]}" --lr nan --out "$tmp/nan"
[ ! -e "$tmp/nan" ] || fail "--lr nan left $tmp/nan behind"
expect_error 1 "validation split is empty" -- "$QMOE" train --train-limit 100 --test-limit 10 --val 0.001 --out "$tmp/v"
[ ! -e "$tmp/v" ] || fail "empty validation split left $tmp/v behind"
# a task without a test split (a CSV file) needs --val
printf '0.1,0.2,0\n0.3,0.1,1\n0.2,0.4,0\n0.5,0.5,1\n' >"$tmp/tiny.csv"
expect_error 1 "no test split" -- "$QMOE" train --task "$tmp/tiny.csv" --model qnn --qubits 2 --readout qubits --out "$tmp/csv"
# damaged task entry in a checkpoint
"$QMOE" train "${small[@]}" --epochs 1 --out "$tmp/t" >/dev/null 2>&1 || fail "tiny run failed"
$PY - "$tmp/t/checkpoint" <<'PYEOF'
import json, sys
j = json.load(open(sys.argv[1])); j["task"] = "x"; json.dump(j, open(sys.argv[1], "w"))
PYEOF
expect_error 1 "checkpoint $tmp/t/checkpoint is damaged (checksum mismatch" -- "$QMOE" train --epochs 2 --resume --out "$tmp/t"
$PY - "$tmp/t/checkpoint" <<'PYEOF'
import json, sys  # as a checkpoint from before the checksum (version 1): the task entry is checked
j = json.load(open(sys.argv[1])); del j["checksum"]; j["version"] = 1; json.dump(j, open(sys.argv[1], "w"))
PYEOF
expect_error 1 "damaged checkpoint: bad \"task\" entry" -- "$QMOE" train --epochs 2 --resume --out "$tmp/t"
echo "train_errors: ok"
