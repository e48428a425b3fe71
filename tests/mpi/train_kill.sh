#!/usr/bin/env bash
# A rank killed mid-run under mpirun: the job stops (non-zero exit, a message
# naming what happened), the last checkpoint parses, and --resume with another
# number of ranks (3) ends with the state of an uninterrupted 1-process run.
# Usage: train_kill.sh QMOE_BINARY SOURCE_DIR MPIEXEC
source "$(dirname "$0")/common.bash" "$@"
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
EPOCHS=4
args=(--train-limit 800 --test-limit 50 --seed 2 --threads 1)

"$QMOE" train "${args[@]}" --epochs "$EPOCHS" --out "$tmp/ref" >/dev/null 2>"$tmp/err0" || fail "reference: $(cat "$tmp/err0")"

"${MPIRUN[@]}" -np 2 "$QMOE" train "${args[@]}" --epochs "$EPOCHS" --out "$tmp/run" >"$tmp/out1" 2>"$tmp/err1" &
pid=$!
for _ in $(seq 1 1200); do  # up to 120 s
  [ -e "$tmp/run/checkpoint" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
[ -e "$tmp/run/checkpoint" ] || fail "no checkpoint appeared: $(cat "$tmp/err1")"
rank1=
for p in $(pgrep -P "$pid"); do  # the qmoe process of rank 1
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && rank1=$p
done
killed=0
[ -n "$rank1" ] && kill -9 "$rank1" 2>/dev/null && killed=1
wait "$pid"
rc=$?
pid=
if [ "$killed" = 1 ]; then
  [ "$rc" -ne 0 ] || fail "mpirun exited 0 after a rank was killed"
  grep -q -i 'signal 9\|killed\|stopped' "$tmp/err1" || fail "no message about the killed rank: $(cat "$tmp/err1")"
else
  echo "note: the run finished before a rank could be killed" >&2
fi
done_epochs=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["state"]["epoch"])' "$tmp/run/checkpoint") ||
  fail "checkpoint after the kill does not parse"
[ "$done_epochs" -ge 1 ] || fail "checkpoint holds $done_epochs epochs"

"${MPIRUN[@]}" -np 3 "$QMOE" train --resume --epochs "$EPOCHS" --threads 1 --out "$tmp/run" >"$tmp/out2" 2>"$tmp/err2" ||
  fail "resume under 3 ranks failed: $(cat "$tmp/err2")"
grep -q '^test accuracy: ' "$tmp/out2" || fail "resumed run: no test accuracy line"
cut -d, -f1-5 "$tmp/ref/metrics.csv" >"$tmp/a"
cut -d, -f1-5 "$tmp/run/metrics.csv" >"$tmp/b"
cmp -s "$tmp/a" "$tmp/b" || fail "metrics.csv differ from the uninterrupted run: $(diff "$tmp/a" "$tmp/b")"
"$PY" - "$tmp/ref/checkpoint" "$tmp/run/checkpoint" <<'PYEOF' || fail "the resumed state differs from the uninterrupted one"
import json, sys
a, b = (json.load(open(f))["state"] for f in sys.argv[1:])
assert a["epoch"] == b["epoch"]
assert a["theta"] == b["theta"] and a["adam"] == b["adam"] and a["rng"] == b["rng"]
PYEOF
echo "train_kill: ok (rank 1 killed after epoch $done_epochs of $EPOCHS)"
