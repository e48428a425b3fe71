#!/usr/bin/env bash
# mpirun -np 2 qmoe reproduce: the ranks share the runs and give the table of
# one process (all but the seconds); a failing cell is reported by name while
# the other runs finish, and the job exits 1 with one error line.
# Usage: reproduce_ranks.sh QMOE_BINARY SOURCE_DIR MPIEXEC
source "$(dirname "$0")/common.bash" "$@"
mkdir -p "$tmp/exp/table2"
tiny_common "$SRC/experiments/common.json" "$tmp/exp/common.json"
for l in 2 3 4; do
  echo "{\"task\": \"mnist4\", \"model\": \"qmoe\", \"ops\": \"ry\", \"experts\": $l}" >"$tmp/exp/table2/mnist4-qmoe-ry-L$l.json"
done
opts=(--table 2 --seeds 2 --experiments "$tmp/exp" --train-limit 64 --test-limit 16)
"$QMOE" reproduce "${opts[@]}" --jobs 1 --out "$tmp/one" >"$tmp/log1" 2>&1 || fail "1 process: $(cat "$tmp/log1")"
"${MPIRUN[@]}" -np 2 "$QMOE" reproduce "${opts[@]}" --out "$tmp/two" >"$tmp/log2" 2>&1 || fail "2 ranks: $(cat "$tmp/log2")"
"$PY" - "$tmp/one/table2.json" "$tmp/two/table2.json" "$tmp/two/table2-timing.json" <<'PYEOF' || fail "tables differ"
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
for t in (a, b):
    for row in t: row.pop("seconds")
assert a == b, (a, b)
assert len(a) == 3 and all(len(r["accuracies_percent"]) == 2 for r in a)
t = json.load(open(sys.argv[3]))
assert t["ranks"] == 2 and t["runs_trained"] == 6, t
PYEOF
[ "$(grep -c '^\[[1-6]/6\] mnist4-qmoe-ry-L[234] seed [01]: ' "$tmp/log2")" -eq 6 ] || fail "2 ranks: not 6 progress lines: $(cat "$tmp/log2")"
# runs that fail while training (every cell is valid: their run directories
# cannot be made, a file stands there) are named; the others finish
mkdir -p "$tmp/bad/runs"
touch "$tmp/bad/runs/mnist4-qmoe-ry-L2-s0" "$tmp/bad/runs/mnist4-qmoe-ry-L2-s1"
"${MPIRUN[@]}" -np 2 "$QMOE" reproduce "${opts[@]}" --out "$tmp/bad" >"$tmp/out3" 2>"$tmp/log3"
rc=$?
[ "$rc" -eq 1 ] || fail "a failing cell: exit $rc, expected 1: $(cat "$tmp/log3")"
[ "$(grep -c '^qmoe: error: ' "$tmp/log3")" -eq 1 ] || fail "not one error line: $(cat "$tmp/log3")"
grep -q '^qmoe: error: 2 runs failed, the first mnist4-qmoe-ry-L2 seed [01]: ' "$tmp/log3" || fail "error does not name the cell: $(cat "$tmp/log3")"
[ "$(grep -c 'mnist4-qmoe-ry-L2 seed [01] failed: ' "$tmp/log3")" -eq 2 ] || fail "failures not reported by name: $(cat "$tmp/log3")"
[ "$(ls "$tmp/bad/runs"/*/result.json | wc -l)" -eq 4 ] || fail "the other runs did not all finish"
echo "reproduce_ranks: ok"
