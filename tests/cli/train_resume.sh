#!/usr/bin/env bash
# qmoe train --resume: 1 epoch, then --resume --epochs 2, ends with the same
# parameters (and metrics) as an uninterrupted 2-epoch run.
# Usage: train_resume.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
args=(--train-limit 300 --test-limit 100 --threads 1 --seed 3)

"$QMOE" train "${args[@]}" --epochs 2 --out "$tmp/full" >/dev/null 2>"$tmp/err" || fail "2-epoch run: $(cat "$tmp/err")"
"$QMOE" train "${args[@]}" --epochs 1 --out "$tmp/split" >/dev/null 2>"$tmp/err" || fail "1-epoch run: $(cat "$tmp/err")"
[ "$(wc -l <"$tmp/split/metrics.csv")" -eq 2 ] || fail "1-epoch run: metrics.csv $(cat "$tmp/split/metrics.csv")"
# --resume reads the task and limits from the checkpoint: no data flags needed
"$QMOE" train --resume --epochs 2 --threads 1 --out "$tmp/split" >"$tmp/out" 2>"$tmp/err" ||
  fail "resumed run: $(cat "$tmp/err")"
grep -q 'resuming after epoch 1' "$tmp/err" || fail "no 'resuming after epoch 1' in: $(cat "$tmp/err")"
grep -q 'epoch 1/' "$tmp/err" && fail "the resumed run trained epoch 1 again: $(cat "$tmp/err")"
grep -q '^test accuracy: ' "$tmp/out" || fail "resumed run: no test accuracy line"

"$PY" - "$tmp/full" "$tmp/split" <<'PYEOF' || fail "resumed run differs from the uninterrupted one"
import json, sys
a = json.load(open(sys.argv[1] + "/checkpoint")); b = json.load(open(sys.argv[2] + "/checkpoint"))
ta, tb = a["state"]["theta"], b["state"]["theta"]
assert a["state"]["epoch"] == b["state"]["epoch"] == 2
assert len(ta) == len(tb) > 0
d = max(abs(x - y) for x, y in zip(ta, tb))
assert d <= 1e-12, f"max |theta difference| {d}"
assert a["state"]["adam"]["step"] == b["state"]["adam"]["step"]
for ha, hb in zip(a["state"]["history"], b["state"]["history"]):
    for k in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert abs(ha[k] - hb[k]) <= 1e-12, (k, ha[k], hb[k])
PYEOF
cut -d, -f1-5 "$tmp/full/metrics.csv" >"$tmp/a"
cut -d, -f1-5 "$tmp/split/metrics.csv" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || fail "metrics.csv differ: $(diff "$tmp/a" "$tmp/b")"

# resuming a finished run without more epochs trains nothing and keeps the parameters
cp "$tmp/split/checkpoint" "$tmp/ck2"
"$QMOE" train --resume --epochs 2 --threads 1 --out "$tmp/split" >/dev/null 2>"$tmp/err" || fail "no-op resume: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; a,b=(json.load(open(f))["state"]["theta"] for f in sys.argv[1:]); sys.exit(a!=b)' \
  "$tmp/ck2" "$tmp/split/checkpoint" || fail "no-op resume changed the parameters"
# a setting --resume would ignore is refused, and nothing is written
cp "$tmp/split/checkpoint" "$tmp/ck3"
expect_error 1 "these flags differ: --depth 5 (checkpoint: 3), --lr 0.01 (checkpoint: 0.002)" -- \
  "$QMOE" train "${args[@]}" --resume --epochs 3 --depth 5 --lr 0.01 --out "$tmp/split"
cmp -s "$tmp/ck3" "$tmp/split/checkpoint" || fail "a refused --resume changed the checkpoint"
# rerunning the same command with --resume and more epochs continues the run (issue 16 item 17)
"$QMOE" train "${args[@]}" --resume --epochs 3 --depth 3 --model qmoe --out "$tmp/split" --json >"$tmp/out" 2>"$tmp/err" ||
  fail "--resume with the checkpoint's own flags: $(cat "$tmp/err")"
grep -q 'resuming after epoch 2' "$tmp/err" || fail "not resumed: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["epoch"] == 3 and 0 <= j["accuracy_percent"] <= 100, j' \
  "$tmp/out" || fail "train --json: $(cat "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "train --json is not one line"
cp "$tmp/split/checkpoint" "$tmp/ck3"
# --resume needs a checkpoint, and cannot go back to fewer epochs than trained
expect_error 1 "no checkpoint in" -- "$QMOE" train --resume --epochs 2 --threads 1 --out "$tmp/none"
[ ! -e "$tmp/none" ] || fail "a refused --resume created its --out directory"
expect_error 1 "already trained 3 epochs" -- "$QMOE" train --resume --epochs 1 --threads 1 --out "$tmp/split"
cmp -s "$tmp/ck3" "$tmp/split/checkpoint" || fail "a refused --resume --epochs 1 changed the checkpoint"
echo "train_resume: ok"
