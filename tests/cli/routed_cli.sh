#!/usr/bin/env bash
# Routed execution through the CLI: `eval` / `predict --execution routed` give
# the coherent numbers (exactly, and within the sampling error with --shots);
# `export --routed` writes an OpenQASM 3 dynamic circuit and per-outcome
# OpenQASM 2.0 programs whose <Z>, mixed with the routing probabilities, are
# predict's <Z>; noise with --method density; the errors.
# Usage: routed_cli.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

"$QMOE" train --train-limit 200 --test-limit 20 --epochs 1 --threads 1 --out "$tmp/q" \
  >"$tmp/train.out" 2>"$tmp/train.err" || fail "train qmoe: $(cat "$tmp/train.err")"
ck="$tmp/q/checkpoint"

# eval: routed == coherent
"$QMOE" eval --checkpoint "$ck" --json >"$tmp/coh.json" || fail "eval coherent"
"$QMOE" eval --checkpoint "$ck" --json --execution routed >"$tmp/rout.json" || fail "eval routed"
"$PY" - "$tmp/coh.json" "$tmp/rout.json" <<'PYEOF' || fail "eval: routed differs from coherent"
import json, sys
c = json.load(open(sys.argv[1])); r = json.load(open(sys.argv[2]))
assert r["execution"] == "routed" and c["execution"] == "coherent"
assert c["accuracy_percent"] == r["accuracy_percent"], (c["accuracy_percent"], r["accuracy_percent"])
assert abs(c["loss"] - r["loss"]) < 1e-9
for a, b in zip(c["routing_by_class"], r["routing_by_class"]):
    assert all(abs(x - y) < 1e-12 for x, y in zip(a, b))
PYEOF

# predict: exact, and shots within 5 standard errors
for i in 0 5; do
  "$QMOE" predict --checkpoint "$ck" --index $i --json >"$tmp/p.json" || fail "predict"
  "$QMOE" predict --checkpoint "$ck" --index $i --json --execution routed >"$tmp/pr.json" || fail "predict routed"
  "$QMOE" predict --checkpoint "$ck" --index $i --json --execution routed --shots 20000 --seed 3 >"$tmp/ps.json" ||
    fail "predict routed shots"
  "$PY" - "$tmp/p.json" "$tmp/pr.json" "$tmp/ps.json" <<'PYEOF' || fail "predict $i: routed differs"
import json, sys, math
p, r, s = (json.load(open(f)) for f in sys.argv[1:4])
for a, b in zip(p["expval_z"], r["expval_z"]):
    assert abs(a - b) < 1e-12, (a, b)
for a, b in zip(p["routing"], r["routing"]):
    assert abs(a - b) < 1e-12
assert s["shots"] == 20000
for a, b in zip(p["expval_z"], s["expval_z"]):
    assert abs(a - b) <= 5 * math.sqrt(max(1e-12, 1 - a * a) / 20000) + 1e-12, (a, b)
PYEOF
done

# export --routed: the dynamic circuit and the separate programs
"$QMOE" export --checkpoint "$ck" --index 5 --routed --qasm "$tmp/s5.qasm" 2>"$tmp/export.err" ||
  fail "export --routed: $(cat "$tmp/export.err")"
grep -q '^OPENQASM 3.0;' "$tmp/s5.qasm" || fail "dynamic circuit is not OpenQASM 3"
grep -q '^route\[1\] = measure q\[8\];' "$tmp/s5.qasm" || fail "routing bit 1 is not q[8]"
grep -q '^if (route == 3) {' "$tmp/s5.qasm" || fail "no feed-forward on outcome 3"
grep -q 'coherent (one circuit)' "$tmp/export.err" || fail "no cost table"
grep -q '^measure q\[1\] -> route\[0\];' "$tmp/s5.router.qasm" || fail "router measures the wrong qubit"
"$QMOE" qasm "$tmp/s5.router.qasm" >/dev/null || fail "router program does not run"
"$QMOE" predict --checkpoint "$ck" --index 5 --json >"$tmp/p.json" || fail "predict 5"
for k in 0 1 2 3; do
  [ -s "$tmp/s5.expert$k.qasm" ] || fail "no program for outcome $k"
  grep -q '^OPENQASM 2.0;' "$tmp/s5.expert$k.qasm" || fail "expert $k: not OpenQASM 2.0"
  "$QMOE" qasm "$tmp/s5.expert$k.qasm" >"$tmp/e$k.json" || fail "expert $k does not run"
done
"$PY" - "$tmp/p.json" "$tmp"/e0.json "$tmp"/e1.json "$tmp"/e2.json "$tmp"/e3.json <<'PYEOF' || fail "sum_k p_k <Z>_k differs from predict"
import json, sys
p = json.load(open(sys.argv[1])); e = [json.load(open(f))["expval_z"] for f in sys.argv[2:]]
for q, z in enumerate(p["expval_z"]):
    mix = sum(p["routing"][k] * e[k][q] for k in range(4))
    assert abs(mix - z) < 1e-9, (q, mix, z)
PYEOF

# noise: the density matrix runs and is reported; routed under noise runs
"$QMOE" eval --checkpoint "$ck" --test-limit 3 --depol2 0.01 --amp-damping 0.001 --method density --json \
  >"$tmp/d.json" || fail "eval --method density"
"$QMOE" eval --checkpoint "$ck" --test-limit 3 --depol2 0.01 --readout-01 0.02 --readout-10 0.05 --execution routed \
  --method density --json >"$tmp/dr.json" || fail "eval routed --method density"
"$PY" - "$tmp/d.json" "$tmp/dr.json" <<'PYEOF' || fail "noise json"
import json, sys
d, r = (json.load(open(f)) for f in sys.argv[1:3])
assert d["noise"]["method"] == "density" and "trajectories" not in d["noise"]
assert r["noise"]["readout_10"] == 0.05 and r["execution"] == "routed"
assert "accuracy_std_error_percent" in d
PYEOF

# errors
"$QMOE" train --model qnn --train-limit 50 --test-limit 5 --epochs 1 --threads 1 --out "$tmp/qnn" >/dev/null 2>&1 ||
  fail "train qnn"
expect_error 1 "needs a QMoE" -- "$QMOE" eval --checkpoint "$tmp/qnn/checkpoint" --execution routed
expect_error 1 "needs a QMoE" -- "$QMOE" export --checkpoint "$tmp/qnn/checkpoint" --index 0 --routed --qasm "$tmp/x.qasm"
expect_error 1 "shots with noise" -- "$QMOE" eval --checkpoint "$ck" --shots 10 --depol1 0.01
expect_error 1 "density matrix is exact" -- "$QMOE" eval --checkpoint "$ck" --depol1 0.01 --method density --trajectories 5
expect_error 1 "density simulates noise" -- "$QMOE" eval --checkpoint "$ck" --method density
"$QMOE" train --routing-encoder joint --train-limit 50 --test-limit 5 --epochs 1 --threads 1 --out "$tmp/j" >/dev/null 2>&1 ||
  fail "train joint"
expect_error 1 "joint routing encoder" -- "$QMOE" eval --checkpoint "$tmp/j/checkpoint" --execution routed --depol1 0.01
"$QMOE" eval --checkpoint "$tmp/j/checkpoint" --execution routed --json >"$tmp/jr.json" || fail "joint routed exact"
"$QMOE" eval --checkpoint "$tmp/j/checkpoint" --json >"$tmp/jc.json" || fail "joint coherent"
"$PY" -c "import json,sys; a=json.load(open('$tmp/jr.json')); b=json.load(open('$tmp/jc.json')); assert abs(a['loss']-b['loss'])<1e-9" ||
  fail "joint: routed differs from coherent"
"$QMOE" export --checkpoint "$tmp/j/checkpoint" --index 0 --routed --qasm "$tmp/j.qasm" 2>"$tmp/err" || fail "joint export"
grep -q "only the dynamic circuit" "$tmp/err" || fail "joint export does not say why there are no expert programs"
[ ! -e "$tmp/j.expert0.qasm" ] || fail "joint: wrote an expert program"
echo "routed_cli: ok"
