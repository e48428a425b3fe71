#!/usr/bin/env bash
# qmoe reproduce --table specialisation: a tiny study (4 data qubits, 1 epoch,
# 64 training samples) of a sampled-routing QMoE, an entropy-regularised QMoE
# and its matched QNN writes specialisation.json (I(class; expert), usage,
# the estimator's measurements) and specialisation.md, keeps the notes after
# "<!-- notes -->", and resumes (a second call trains nothing).
# Usage: reproduce_specialisation.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

mkdir -p "$tmp/exp/specialisation"
tiny_common "$SRC/experiments/specialisation/common.json" "$tmp/exp/specialisation/common.json"
d="$tmp/exp/specialisation"
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry", "experts": 4, "config": {"routing": "sampled", "load_balance": 0.1}, "baseline": "qnn-matched"}' >"$d/mnist4-sampled.json"
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry", "experts": 4, "config": {"routing_entropy": 0.1}, "baseline": "qnn-matched"}' >"$d/mnist4-entropy.json"
echo '{"task": "mnist4", "model": "qnn-matched", "ops": "ry", "experts": 4}' >"$d/mnist4-qnn-matched.json"
run() {
  "$QMOE" reproduce --table specialisation --seeds 1 --jobs 1 --experiments "$tmp/exp" --out "$tmp/results" \
    --train-limit 64 --test-limit 32 >"$tmp/log" 2>&1 || fail "reproduce: $(cat "$tmp/log")"
  "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])); print(t["runs_trained"], t["runs_reused"])' \
    "$tmp/results/specialisation-timing.json"
}
[ "$(run)" = "3 0" ] || fail "first run: expected 3 trained"
"$PY" - "$tmp/results/specialisation.json" <<'PYEOF' || fail "specialisation.json content"
import json, sys
t = {r["variant"]: r for r in json.load(open(sys.argv[1]))}
s = t["sampled"]
assert 0 <= s["mi_mean"] <= 2, s["mi_mean"]
r = s["routing"][0]
assert abs(sum(r["usage"]) - 1) < 1e-9
assert sum(map(sum, r["choice_counts"])) == 32
e = r["estimator"]
assert e["draws"] == 200 and e["batch"] == 32 and e["relative_std"] > 0
assert "estimator" not in t["entropy"]["routing"][0]
assert "mi_mean" not in t["qnn-matched"]
assert t["sampled"]["config"]["model"]["routing"] == "sampled"
PYEOF
grep -q "REDUCED: first 64 training samples" "$tmp/results/specialisation.md" || fail "md does not say the run was reduced"
grep -q "| sampled |" "$tmp/results/specialisation.md" || fail "md has no row for the sampled variant"
printf '\n<!-- notes -->\nWhat the evidence says.\n' >>"$tmp/results/specialisation.md"
[ "$(run)" = "0 3" ] || fail "second run: expected every finished run reused"
grep -q "What the evidence says." "$tmp/results/specialisation.md" || fail "the notes were not kept"
# a cell file not named for its task, an unknown key: one error line
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry"}' >"$d/fashion4-x.json"
expect_error 1 'fashion4-x.json: the file name must start with its task' -- "$QMOE" reproduce --table specialisation --seeds 1 --experiments "$tmp/exp" --out "$tmp/results" --train-limit 64 --test-limit 16
rm "$d/fashion4-x.json"
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry", "config": {"routing": "hard"}}' >"$d/mnist4-bad.json"
expect_error 1 "routing must be soft or sampled" -- "$QMOE" reproduce --table specialisation --seeds 1 --experiments "$tmp/exp" --out "$tmp/results" --train-limit 64 --test-limit 16
echo "reproduce_specialisation: ok"
