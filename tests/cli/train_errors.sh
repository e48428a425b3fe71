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
echo "train_errors: ok"
