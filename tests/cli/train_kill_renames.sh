#!/usr/bin/env bash
# A kill right after any rename of a training run leaves a run directory that
# --resume makes consistent (issue 16 item 8): config.json, checkpoint,
# checkpoint.best and metrics.csv then equal an uninterrupted run's (timings
# aside), also when the resume itself is killed right after its first rename.
# QMOE_TEST_KILL_AFTER_RENAMES=N makes qmoe train kill itself (SIGKILL) right
# after its N-th rename in the run directory (src/cli/run_dir.hpp).
# Usage: train_kill_renames.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
"$PY" - "$tmp" <<'PYEOF' || fail "python"
import random, sys
r = random.Random(1)
for name, n in (("train", 48), ("test", 16)):
    with open(f"{sys.argv[1]}/{name}.csv", "w") as f:  # no header: 4 features, label 0/1
        for k in range(n):
            c = k % 2
            f.write(",".join(f"{r.uniform(-1, 1) + (1.5 if i == c else 0):.4f}" for i in range(4)) + f",{c}\n")
PYEOF
# 6 epochs whose best is epoch 4: checkpoint.best is written in epochs 1-4 and
# must be rebuilt from the best state the checkpoint keeps after that.
args=(--task "$tmp/train.csv" --test-csv "$tmp/test.csv" --model qnn --qubits 4 --depth 1 --epochs 6 --batch 8
      --lr 0.05 --seed 5 --threads 1)
"$QMOE" train "${args[@]}" --out "$tmp/ref" >/dev/null 2>"$tmp/err" || fail "reference run: $(cat "$tmp/err")"

# The files of a run without their timings (and so without the checksums), as one comparable text.
summary() {
  "$PY" - "$1" <<'PYEOF'
import csv, json, sys
d = sys.argv[1]
def checkpoint(path):
    j = json.load(open(path))
    j.pop("checksum")
    for h in j["state"]["history"]:
        h.pop("seconds")
    return j
rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(open(d + "/metrics.csv"))]
print(json.dumps({"config": json.load(open(d + "/config.json")), "checkpoint": checkpoint(d + "/checkpoint"),
                  "best": checkpoint(d + "/checkpoint.best"), "metrics": rows}, sort_keys=True))
PYEOF
}
summary "$tmp/ref" >"$tmp/ref.txt" || fail "reference run's files"
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1]))["state"]; sys.exit(not (s["best_epoch"] == 4 and "best" in s))' \
  "$tmp/ref/checkpoint" || fail "the reference run's best epoch is not 4: the test no longer covers a rebuilt checkpoint.best"

# run DIR [N]: qmoe train, killed after its N-th rename (0: not killed); prints its exit code.
run() {
  local dir=$1 n=${2:-0} rc=0
  if [ "$n" -gt 0 ]; then
    QMOE_TEST_KILL_AFTER_RENAMES=$n "${@:3}" --out "$dir" >/dev/null 2>"$tmp/err" || rc=$?
  else
    "${@:3}" --out "$dir" >/dev/null 2>"$tmp/err" || rc=$?
  fi
  echo "$rc"
}

n=1
while :; do
  dir="$tmp/k$n"
  rc=$(run "$dir" "$n" "$QMOE" train "${args[@]}")
  [ "$rc" -eq 0 ] && break  # fewer renames than n: nothing left to interrupt
  [ "$rc" -eq 137 ] || fail "run killed after rename $n exited $rc, not 137 (SIGKILL): $(cat "$tmp/err")"
  ls "$dir"/*.tmp >/dev/null 2>&1 && fail "rename $n: temporary files left: $(ls "$dir")"
  if [ -e "$dir/checkpoint" ]; then
    for f in checkpoint checkpoint.best; do  # every file there loads: none is half-written or damaged
      [ ! -e "$dir/$f" ] || "$QMOE" eval --checkpoint "$dir/$f" >/dev/null 2>"$tmp/err" ||
        fail "rename $n: $f does not load: $(cat "$tmp/err")"
    done
    # Resume, killed again right after its first rename (it rebuilds checkpoint.best
    # or metrics.csv first), then resume to the end.
    rc=$(run "$dir" 1 "$QMOE" train --resume --threads 1)
    [ "$rc" -eq 137 ] || fail "rename $n: the resume killed after its first rename exited $rc: $(cat "$tmp/err")"
    rc=$(run "$dir" 0 "$QMOE" train --resume --threads 1)
    [ "$rc" -eq 0 ] || fail "rename $n: resume: $(cat "$tmp/err")"
  else  # killed before the first checkpoint: the run starts again
    rc=$(run "$dir" 0 "$QMOE" train "${args[@]}")
    [ "$rc" -eq 0 ] || fail "rename $n: rerun: $(cat "$tmp/err")"
  fi
  summary "$dir" >"$tmp/k.txt" || fail "rename $n: the files after resuming"
  cmp -s "$tmp/ref.txt" "$tmp/k.txt" || fail "rename $n: after resuming, the run differs from the uninterrupted one:
$(diff <(tr ',' '\n' <"$tmp/ref.txt") <(tr ',' '\n' <"$tmp/k.txt") | head -20)"
  n=$((n + 1))
  [ "$n" -le 60 ] || fail "more than 60 renames in a 6-epoch run"
done
# config.json, 3 renames in each of epochs 1-4 (checkpoint, checkpoint.best,
# metrics.csv), 2 in epochs 5-6, the final checkpoint: 18.
[ "$n" -eq 19 ] || fail "$((n - 1)) renames in the 6-epoch run, expected 18"
echo "train_kill_renames: ok (killed after each of $((n - 1)) renames, and again in each resume)"
