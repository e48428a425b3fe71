#!/usr/bin/env bash
# --noise-model FILE.json through `qmoe qasm` with the exact density matrix:
# per-qubit gate errors, damping and read-out directions give their closed
# forms; malformed files give one error line naming the file and the field.
# Usage: noise_model_cli.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

cat >"$tmp/c.qasm" <<'QEOF'
OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
x q[0];
x q[1];
cx q[1], q[2];
QEOF
cat >"$tmp/dev.json" <<'JEOF'
{"description": "test device", "depol2": 0.03, "readout_01": 0.01,
 "qubits": {"0": {"depol1": 0.06}, "1": {"readout_10": 0.25, "amp_damping": 0.1}, "2": {"depol2": 0.09}}}
JEOF
"$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/dev.json" --method density >"$tmp/o.json" 2>"$tmp/err" ||
  fail "qasm --noise-model: $(cat "$tmp/err")"
"$PY" - "$tmp/o.json" <<'PYEOF' || fail "closed forms"
import json, sys
o = json.load(open(sys.argv[1])); z = o["expval_z"]
# q0: X, depol1 0.06 of its own; read-out 0->1 0.01 (global), 1->0 0
p0 = (1 + (1 - 4 * 0.06 / 3)) / 2
assert abs(z[0] - (1 - 2 * (p0 + (1 - p0) * 0.01))) < 1e-12, z[0]
# q1: X (no depol1 globally), amp damping 0.1 after X and after the CX, CX depol 0.03 (a Z-diagonal
# component after the CX: X/Y flips), read-out 1->0 0.25, 0->1 0.01
# in order: X, damping; CX, depolarizing (scales <Z> by 1 - 4p/3), damping
zc = (1 - 2 * (1 - 0.1))              # after X + damping
zc = zc * (1 - 4 * 0.03 / 3)          # depol after CX
p1 = (1 - zc) / 2 * (1 - 0.1)         # damping after CX
pm1 = p1 * (1 - 0.25) + (1 - p1) * 0.01
assert abs(z[1] - (1 - 2 * pm1)) < 1e-12, (z[1], 1 - 2 * pm1)
assert o["std_error"] == [0, 0, 0]
assert o["noise"]["noise_model"].endswith("dev.json") and o["noise"]["per_qubit"] is True
PYEOF
# trajectories run the same file and agree within 5 standard errors
"$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/dev.json" --trajectories 4000 >"$tmp/t.json" || fail "trajectories"
"$PY" - "$tmp/o.json" "$tmp/t.json" <<'PYEOF' || fail "trajectories differ from the density matrix"
import json, sys
d, t = (json.load(open(f)) for f in sys.argv[1:3])
for a, b, se in zip(d["expval_z"], t["expval_z"], t["std_error"]):
    assert abs(a - b) <= 5 * se + 1e-12, (a, b, se)
assert all(se > 0 for se in t["std_error"][:2])
PYEOF

echo '{"depol1": 1.5}' >"$tmp/bad1.json"
expect_error 1 "bad1.json: field 'depol1': must be a probability" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/bad1.json"
echo '{"qubits": {"3": {"depol2": "x"}}}' >"$tmp/bad2.json"
expect_error 1 "field 'qubits.3.depol2': expected a number" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/bad2.json"
echo '{"depol": 0.1}' >"$tmp/bad3.json"
expect_error 1 "field 'depol': unknown field" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/bad3.json"
echo '{"qubits": {"q0": {}}}' >"$tmp/bad4.json"
expect_error 1 "field 'qubits.q0': a qubit index" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/bad4.json"
echo '{"depol1": 0.1,' >"$tmp/bad5.json"
expect_error 1 "bad5.json: not valid JSON" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/bad5.json"
expect_error 1 "cannot open noise model" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/none.json"
expect_error 1 "drop the other error options" -- "$QMOE" qasm "$tmp/c.qasm" --noise-model "$tmp/dev.json" --depol1 0.2
echo "noise_model_cli: ok"
