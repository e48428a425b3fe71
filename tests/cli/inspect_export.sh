#!/usr/bin/env bash
# qmoe predict / export / qasm agree: the exported OpenQASM circuit of a test
# sample, simulated by `qmoe qasm`, gives the same <Z> on the data qubits as
# `qmoe predict`, to 1e-9. For a QMoE with 4 experts, one with 3 experts
# (routing basis state |3> selects no expert; quadrant routing encoder,
# whose extra inputs come from model::circuit_inputs) and a QNN. Also checks eval.
# Usage: inspect_export.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

check_model() {
  local name=$1; shift
  local dir="$tmp/$name"
  "$QMOE" train --train-limit 200 --test-limit 50 --epochs 1 --threads 1 --out "$dir" "$@" \
    >"$tmp/train.out" 2>"$tmp/train.err" || fail "$name: train failed: $(cat "$tmp/train.err")"
  for i in 0 7 49; do
    "$QMOE" predict --checkpoint "$dir/checkpoint" --index "$i" --json >"$tmp/pred.json" 2>"$tmp/err" ||
      fail "$name: predict $i: $(cat "$tmp/err")"
    "$QMOE" export --checkpoint "$dir/checkpoint" --index "$i" --qasm "$tmp/$name.qasm" 2>"$tmp/err" ||
      fail "$name: export $i: $(cat "$tmp/err")"
    [ ! -e "$tmp/$name.qasm.tmp" ] && ! ls "$tmp/$name.qasm".tmp* >/dev/null 2>&1 || fail "$name: temporary file left"
    grep -q '^OPENQASM 2.0;' "$tmp/$name.qasm" || fail "$name: not OpenQASM 2.0"
    # only qelib1.inc gates
    if grep -vE '^(//|OPENQASM|include|qreg|$)' "$tmp/$name.qasm" |
        grep -vqE '^(u1|u2|u3|x|y|z|h|s|sdg|t|tdg|rx|ry|rz|cx|cy|cz|ch|ccx|crz|cu1|cu3|id|swap|cswap)[ (]'; then
      fail "$name: gate outside qelib1.inc: $(grep -vE '^(//|OPENQASM|include|qreg|$)' "$tmp/$name.qasm" | head -3)"
    fi
    "$QMOE" qasm "$tmp/$name.qasm" >"$tmp/qasm.json" 2>"$tmp/err" || fail "$name: qasm $i: $(cat "$tmp/err")"
    "$PY" - "$tmp/pred.json" "$tmp/qasm.json" "$name" "$i" <<'PYEOF' || fail "$name: sample $i: predict and qasm differ"
import json, sys
p = json.load(open(sys.argv[1])); q = json.load(open(sys.argv[2])); name = sys.argv[3]
dq = p["data_qubits"]
assert len(p["expval_z"]) == len(dq)
for z, k in zip(p["expval_z"], dq):
    if abs(z - q["expval_z"][k]) > 1e-9:
        sys.exit(f"{name}: <Z> of data qubit at q[{k}]: predict {z}, qasm {q['expval_z'][k]}")
pr = p["probabilities"]
assert abs(sum(pr) - 1) < 1e-12 and p["predicted"] == max(range(len(pr)), key=lambda c: pr[c])
assert 0 <= p["label"] < len(pr)
if name.startswith("qmoe"):
    r = p["routing_qubits"]
    assert dq == list(range(len(dq))), "the data register comes first, then the routing register"
    assert q["n_qubits"] == r + len(dq)
    L = len(p["routing"]); s = sum(p["routing"])
    assert all(-1e-12 <= x <= 1 + 1e-12 for x in p["routing"])
    assert s <= 1 + 1e-9 and (L < 2**r or abs(s - 1) < 1e-9), (L, r, s)
else:
    assert "routing" not in p and dq == list(range(len(dq))) and q["n_qubits"] == len(dq)
PYEOF
  done
  # eval --json is consistent with the training run's final test accuracy and with itself
  "$QMOE" eval --checkpoint "$dir" --json >"$tmp/eval.json" 2>"$tmp/err" || fail "$name: eval: $(cat "$tmp/err")"
  "$PY" - "$tmp/eval.json" "$dir/metrics.csv" "$name" <<'PYEOF' || fail "$name: eval output wrong"
import json, sys, csv
e = json.load(open(sys.argv[1])); rows = list(csv.DictReader(open(sys.argv[2]))); name = sys.argv[3]
C = len(e["class_names"])
assert e["samples"] == 50 and sum(e["counts"]) == 50 and e["task"]["task"] == "mnist4"
assert abs(e["accuracy_percent"] - float(rows[-1]["test_accuracy_percent"])) < 1e-10
assert abs(e["loss"] - float(rows[-1]["test_loss"])) < 1e-8
conf = e["confusion"]
assert len(conf) == C and all(sum(conf[c]) == e["counts"][c] for c in range(C))
assert sum(conf[c][c] for c in range(C)) * 2 == e["accuracy_percent"]  # of 50 samples: exact
assert e["model"]["routing_qubits"] == (0 if name == "qnn" else (e["experts"] - 1).bit_length()), e["model"]
assert e["params"] > 0 and e["model"]["model"] == ("qnn" if name == "qnn" else "qmoe")
if name != "qnn":
    rb = e["routing_by_class"]
    assert len(rb) == C and len(rb[0]) == e["experts"] and all(sum(r) <= 1 + 1e-9 for r in rb)
else:
    assert "routing_by_class" not in e
PYEOF
  "$QMOE" eval --checkpoint "$dir" >"$tmp/eval.txt" 2>"$tmp/err" || fail "$name: eval table: $(cat "$tmp/err")"
  grep -q '^accuracy: ' "$tmp/eval.txt" || fail "$name: eval table has no accuracy line"
  grep -q '^confusion' "$tmp/eval.txt" || fail "$name: eval table has no confusion matrix"
  if [ "$name" != qnn ]; then grep -q 'routing' "$tmp/eval.txt" || fail "$name: eval table has no routing"; fi
  echo "$name: ok"
}

check_model qmoe4 --model qmoe --experts 4
check_model qmoe3 --model qmoe --experts 3 --qubits 6 --routing-encoder quadrant
check_model qnn --model qnn --qubits 6

# Noise (docs/noise.md): a vanishing error leaves eval as it is; a noisy eval is
# reproducible with its seed and says which noise it simulated.
dir="$tmp/qnn"
"$QMOE" eval --checkpoint "$dir" --json >"$tmp/exact.json" || fail "eval failed"
"$QMOE" eval --checkpoint "$dir" --json --readout-error 1e-15 --trajectories 3 >"$tmp/tiny.json" || fail "noisy eval failed"
"$PY" - "$tmp/exact.json" "$tmp/tiny.json" <<'PYEOF' || fail "eval with a vanishing error differs: $(cat "$tmp/tiny.json")"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert "noise" not in a and b["noise"]["trajectories"] == 3 and b["noise"]["seed"] == 0, b.get("noise")
assert a["confusion"] == b["confusion"], (a["confusion"], b["confusion"])
assert abs(a["loss"] - b["loss"]) < 1e-9, (a["loss"], b["loss"])
PYEOF
"$QMOE" eval --checkpoint "$dir" --depol1 0.05 --depol2 0.05 --seed 3 >"$tmp/n1.txt" || fail "noisy eval failed"
"$QMOE" eval --checkpoint "$dir" --depol1 0.05 --depol2 0.05 --seed 3 >"$tmp/n2.txt" || fail "noisy eval failed"
cmp -s "$tmp/n1.txt" "$tmp/n2.txt" || fail "noisy eval is not reproducible"
grep -q '^noise: depol1 0.05, depol2 0.05, amp damping 0, phase damping 0, readout error 0; mean of 100 trajectories (seed 3)$' "$tmp/n1.txt" ||
  fail "noise line: $(cat "$tmp/n1.txt")"
"$QMOE" predict --checkpoint "$dir" --index 3 --depol2 0.01 --json >"$tmp/np.json" || fail "noisy predict failed"
"$PY" -c 'import json,sys; j=json.load(open(sys.argv[1])); assert j["noise"]["depol2"] == 0.01, j' "$tmp/np.json" ||
  fail "noisy predict: $(cat "$tmp/np.json")"
set +e
expect_error 1 "trajectories needs noise" -- "$QMOE" eval --checkpoint "$dir" --trajectories 10
expect_error 2 "readout-error" -- "$QMOE" eval --checkpoint "$dir" --readout-error -0.5
expect_error 2 "'nan' is not a probability" -- "$QMOE" eval --checkpoint "$dir" --depol1 nan
expect_error 2 "is not an integer in 0 .. 18446744073709551615" -- "$QMOE" eval --checkpoint "$dir" --depol1 0.1 --seed -1
expect_error 1 "seed seeds the noise" -- "$QMOE" predict --checkpoint "$dir" --index 0 --seed 3
echo "inspect_export: ok"
