#!/usr/bin/env bash
# qmoe train survives kill -9: start a longer run in the background, kill it
# once the first checkpoint exists, then --resume: the run finishes, every
# epoch is in metrics.csv and the checkpoint parses.
# Usage: train_kill.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
EPOCHS=6
args=(--train-limit 1500 --test-limit 100 --threads 1 --seed 1)

"$QMOE" train "${args[@]}" --epochs "$EPOCHS" --out "$tmp/run" >"$tmp/out1" 2>"$tmp/err1" &
pid=$!
for _ in $(seq 1 1200); do  # up to 120 s
  [ -e "$tmp/run/checkpoint" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -e "$tmp/run/checkpoint" ] || fail "no checkpoint appeared: $(cat "$tmp/err1")"
if kill -9 "$pid" 2>/dev/null; then killed=1; else killed=0; fi
wait "$pid" 2>/dev/null
pid=
[ "$killed" = 1 ] || echo "note: the run finished before it could be killed" >&2
done_epochs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["epoch"])' "$tmp/run/checkpoint") ||
  fail "checkpoint after kill -9 does not parse"
[ "$done_epochs" -ge 1 ] || fail "checkpoint holds $done_epochs epochs"
[ "$killed" = 0 ] || [ "$done_epochs" -lt "$EPOCHS" ] || echo "note: killed after the last epoch" >&2

"$QMOE" train --resume --epochs "$EPOCHS" --threads 1 --out "$tmp/run" >"$tmp/out2" 2>"$tmp/err2" ||
  fail "resume after kill -9 failed: $(cat "$tmp/err2")"
grep -q '^test accuracy: ' "$tmp/out2" || fail "resumed run: no test accuracy line"
"$PY" - "$tmp/run" "$EPOCHS" <<'PYEOF' || fail "state after resume is wrong"
import csv, json, sys
d, n = sys.argv[1], int(sys.argv[2])
ck = json.load(open(d + "/checkpoint"))
json.load(open(d + "/checkpoint.best"))
rows = list(csv.DictReader(open(d + "/metrics.csv")))
assert ck["state"]["epoch"] == n, ck["state"]["epoch"]
assert [int(r["epoch"]) for r in rows] == list(range(1, n + 1)), [r["epoch"] for r in rows]
assert len(ck["state"]["history"]) == n
PYEOF
echo "train_kill: ok (killed after epoch $done_epochs of $EPOCHS)"
