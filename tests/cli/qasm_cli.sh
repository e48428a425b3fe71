#!/usr/bin/env bash
# qmoe qasm: JSON output on files with known answers, shots, seeds, errors.
# Usage: qasm_cli.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
DATA=$2/tests/data/qasm

# run ARGS...: run qmoe qasm, stdout into $tmp/out (one JSON line), exit 0 expected.
run() {
  "$QMOE" qasm "$@" >"$tmp/out" 2>"$tmp/err" || fail "qmoe qasm $* failed: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/out")" -eq 1 ] || fail "qmoe qasm $*: expected one line, got: $(cat "$tmp/out")"
}
# check JQ_EXPR: the expression must be true on the last output.
check() {
  jq -e "$1" "$tmp/out" >/dev/null || fail "'$1' is false on: $(cat "$tmp/out")"
}
near() {  # near EXPR VALUE TOL -> jq expression
  echo "(($1) - ($2)) * (($1) - ($2)) <= ($3) * ($3)"
}
# qasm_error NAME PROGRAM PATTERN: PROGRAM (backslash escapes like printf's)
# written to $tmp/NAME.qasm; qmoe qasm on it exits 1 with one error line
# matching PATTERN (which may name the file as $tmp/NAME.qasm).
qasm_error() {
  printf '%b' "$2" >"$tmp/$1.qasm"
  expect_error 1 "$3" -- "$QMOE" qasm "$tmp/$1.qasm"
}
QASM_HEADER='OPENQASM 2.0;\ninclude "qelib1.inc";\n'  # the header of every program below

# x q[0]: <Z> = [-1, 1], keys in the documented order.
run "$DATA/x.qasm"
[ "$(cat "$tmp/out")" = '{"n_qubits":2,"expval_z":[-1.0,1.0]}' ] || fail "x.qasm: $(cat "$tmp/out")"
run "$DATA/x.qasm" --grad
check '.jacobian == [[],[]]'

# ry(0.3): <Z> = cos 0.3, d<Z>/dp0 = -sin 0.3 (adjoint, exact).
run "$DATA/ry.qasm" --grad
check "$(near '.expval_z[0]' 0.955336489125606 1e-12)"
check "$(near '.jacobian[0][0]' -0.29552020666133955 1e-12)"
check '.n_qubits == 1 and (.jacobian | length) == 1 and (.jacobian[0] | length) == 1'
run "$DATA/ry.qasm" --grad --float
check "$(near '.expval_z[0]' 0.955336489125606 1e-6)"
check "$(near '.jacobian[0][0]' -0.29552020666133955 1e-6)"

# Several registers, u3 with three parameters, crz: Z of b[1] = cos(pi/3), and
# d<Z_b1>/dp0 = -sin(pi/3); p runs over 0.0-free numeric args: 3 (u3) + 1 (crz).
run "$DATA/bell.qasm" --grad
check "$(near '.expval_z[0]' 0 1e-12) and $(near '.expval_z[1]' 0 1e-12) and $(near '.expval_z[2]' 0.5 1e-12)"
check "$(near '.jacobian[2][0]' -0.8660254037844386 1e-12) and (.jacobian[0] | length) == 4"

# Shots: converge within a few standard errors; same seed -> same output.
N=20000
run "$DATA/ry.qasm" --shots $N --seed 7
cp "$tmp/out" "$tmp/shots1"
check "$(near '.expval_z[0]' 0.955336489125606 "5 * ((1 - 0.9127) / $N | sqrt)")"
check '(.expval_z[0] * '$N' | . == floor)'  # a mean of +-1 outcomes: 2k/N - 1
run "$DATA/ry.qasm" --shots $N --seed 7
cmp -s "$tmp/out" "$tmp/shots1" || fail "same seed gave different output"
run "$DATA/ry.qasm" --shots $N --seed 8
cmp -s "$tmp/out" "$tmp/shots1" && fail "different seeds gave identical output"
run "$DATA/ry.qasm" --shots $N   # default seed 0
run "$DATA/ry.qasm" --shots $N --seed 0
check 'has("jacobian") | not'
# --grad --shots: parameter-shift rule on shot estimates, std ~ 0.68/sqrt(N).
run "$DATA/ry.qasm" --grad --shots $N --seed 3
check "$(near '.jacobian[0][0]' -0.29552020666133955 "5 * 0.68 / ($N | sqrt)")"
cp "$tmp/out" "$tmp/g1"
run "$DATA/ry.qasm" --grad --shots $N --seed 3
cmp -s "$tmp/out" "$tmp/g1" || fail "--grad --shots not deterministic"
# A controlled rotation (four-term rule) on shots agrees with the adjoint value.
run "$DATA/all_gates.qasm" --grad
cp "$tmp/out" "$tmp/exact"
run "$DATA/all_gates.qasm" --grad --shots 40000 --seed 1
jq -e --slurpfile e "$tmp/exact" '
  [range(0; .expval_z | length) as $i | (.expval_z[$i] - $e[0].expval_z[$i]) | fabs] | max < 0.03' \
  "$tmp/out" >/dev/null || fail "shot expectations far from exact: $(cat "$tmp/out")"
jq -e --slurpfile e "$tmp/exact" '
  [range(0; .jacobian | length) as $i | range(0; .jacobian[$i] | length) as $j
   | (.jacobian[$i][$j] - $e[0].jacobian[$i][$j]) | fabs] | max < 0.08' \
  "$tmp/out" >/dev/null || fail "shot jacobian far from exact: $(cat "$tmp/out")"

# Errors: one line "qmoe: error: FILE:LINE:COL: message", exit 1.
B=$DATA/bad_missing_semicolon.qasm
expect_error 1 "^qmoe: error: $B:5:14: expected ';' after ']' (found 'measure' on line 6)\$" -- "$QMOE" qasm "$B"
expect_error 1 "^qmoe: error: cannot open $tmp/none.qasm: No such file or directory\$" -- "$QMOE" qasm "$tmp/none.qasm"
qasm_error range "${QASM_HEADER}qreg q[2];\nh q[2];\n" \
  "^qmoe: error: $tmp/range.qasm:4:5: index 2 out of range for register 'q' of size 2\$"
qasm_error nohead 'qreg q[1];\n' ":1:1: missing header"
qasm_error empty 'OPENQASM 2.0;\n' "no qubits declared"
expect_error 2 "" -- "$QMOE" qasm "$DATA/x.qasm" --shots 0
expect_error 2 "" -- "$QMOE" qasm
expect_error 1 "^qmoe: error: cannot read $tmp: is a directory\$" -- "$QMOE" qasm "$tmp"
expect_error 2 "is not an integer in 0 .. 18446744073709551615" -- "$QMOE" qasm "$DATA/x.qasm" --shots 10 --seed -1
expect_error 2 "is not an integer in 0 .. 18446744073709551615" -- "$QMOE" qasm "$DATA/x.qasm" --shots 10 --seed 18446744073709551616
expect_error 1 "seed is for --shots or noise" -- "$QMOE" qasm "$DATA/x.qasm" --seed 5
expect_error 2 "unknown command 'qsam'" -- "$QMOE" qsam "$DATA/x.qasm"

# Standard input and a UTF-8 byte-order mark read like the file.
printf 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nx q[0];\ncx q[0],q[1];\n' >"$tmp/xcx.qasm"
want=$("$QMOE" qasm "$tmp/xcx.qasm")
[ "$("$QMOE" qasm - <"$tmp/xcx.qasm")" = "$want" ] || fail "qasm - (stdin) differs from the file"
{ printf '\xEF\xBB\xBF'; cat "$tmp/xcx.qasm"; } >"$tmp/bom.qasm"
[ "$("$QMOE" qasm "$tmp/bom.qasm")" = "$want" ] || fail "a byte-order mark changed the result"

# Noise (docs/noise.md): X then CX with errors p1 after x, p2 on both CX qubits and
# read-out flips r: <Z_0> = <Z_1> = -(1 - 4 p1/3)(1 - 4 p2/3)(1 - 2 r).
"$QMOE" qasm "$tmp/xcx.qasm" --depol1 0.03 --depol2 0.06 --readout-error 0.02 --trajectories 20000 >"$tmp/noisy.json"
/usr/bin/python3 - "$tmp/noisy.json" <<'PY' || fail "noisy expectations: $(cat "$tmp/noisy.json")"
import json, math, sys
j = json.load(open(sys.argv[1]))
exact = -(1 - 4 * 0.03 / 3) * (1 - 4 * 0.06 / 3) * (1 - 2 * 0.02)
for z in j["expval_z"]:
    assert abs(z - exact) < 5 * math.sqrt(1 / 20000), (z, exact)
assert j["noise"] == {"depol1": 0.03, "depol2": 0.06, "amp_damping": 0.0, "phase_damping": 0.0, "readout_error": 0.02, "readout_01": 0.02, "readout_10": 0.02, "method": "trajectories", "trajectories": 20000, "seed": 0}, j["noise"]
PY
"$QMOE" qasm "$tmp/xcx.qasm" --depol1 0.03 --shots 2000 --seed 4 >"$tmp/s1.json"
"$QMOE" qasm "$tmp/xcx.qasm" --depol1 0.03 --shots 2000 --seed 4 >"$tmp/s2.json"
cmp -s "$tmp/s1.json" "$tmp/s2.json" || fail "noisy shots are not reproducible"
expect_error 1 "trajectories needs noise" -- "$QMOE" qasm "$tmp/xcx.qasm" --trajectories 10
expect_error 1 "drop --grad or the noise options" -- "$QMOE" qasm "$tmp/xcx.qasm" --grad --depol1 0.1
expect_error 2 "depol1" -- "$QMOE" qasm "$tmp/xcx.qasm" --depol1 1.5
# --shots with measure: counts of the classical registers' values (Qiskit's
# order: last register first, bit 0 on the right); a user gate makes the Bell pair
cat >"$tmp/bell.qasm" <<'QEOF'
OPENQASM 2.0;
include "qelib1.inc";
gate bell a, b { h a; cx a, b; }
qreg q[3];
creg c[2];
creg d[1];
bell q[0], q[1];
x q[2];
measure q[0] -> c[0];
measure q[1] -> c[1];
measure q[2] -> d[0];
QEOF
"$QMOE" qasm "$tmp/bell.qasm" --shots 2000 --seed 4 >"$tmp/bell.json" || fail "qasm bell --shots"
"$PY" - "$tmp/bell.json" <<'PYEOF' || fail "bell counts"
import json, sys
o = json.load(open(sys.argv[1])); c = o["counts"]
assert set(c) == {"1 00", "1 11"}, c
assert sum(c.values()) == 2000 and abs(c["1 00"] - 1000) < 5 * 22.4, c
assert len(o["std_error"]) == 3
PYEOF
"$QMOE" qasm "$tmp/bell.qasm" --shots 500 --readout-error 0.1 >"$tmp/bell2.json" || fail "noisy counts"
"$PY" -c "import json; c=json.load(open('$tmp/bell2.json'))['counts']; assert sum(c.values())==500 and len(c)>2, c" ||
  fail "noisy counts show no read-out error"
"$QMOE" qasm "$tmp/bell.qasm" >"$tmp/bell3.json" || fail "exact bell"
grep -q counts "$tmp/bell3.json" && fail "counts without --shots"

# Dynamic programs (docs/qasm.md): reset, if, mid-circuit measurement.
# Teleportation with if corrections: <Z_2> = cos(0.7) exactly, and within
# sampling error on shots; the c0 c1 outcomes are uniform.
T=$DATA/teleport.qasm
run "$T"
check "$(near '.expval_z[2]' 0.7648421872844885 1e-12) and $(near '.expval_z[0]' 0 1e-12) and (has(\"counts\") | not)"
run "$T" --float
check "$(near '.expval_z[2]' 0.7648421872844885 1e-5)"
run "$T" --shots $N --seed 5
cp "$tmp/out" "$tmp/tele1"
check "$(near '.expval_z[2]' 0.7648421872844885 "5 * ((1 - 0.585) / $N | sqrt)")"
check "(.counts | add) == $N and (.counts | keys | length) == 8 and (.std_error | length) == 3"
check "[.counts | to_entries[] | select(.key[0:1] == \"0\") | .value] | add > $N * 0.85"  # c2 = 0 mostly
run "$T" --shots $N --seed 5
cmp -s "$tmp/out" "$tmp/tele1" || fail "dynamic shots: same seed gave different output"
OMP_NUM_THREADS=1 "$QMOE" qasm "$T" --shots $N --seed 5 >"$tmp/tele2"
cmp -s "$tmp/tele2" "$tmp/tele1" || fail "dynamic shots depend on the thread count"
run "$T" --shots $N --seed 6
cmp -s "$tmp/out" "$tmp/tele1" && fail "dynamic shots: different seeds gave identical output"
# h; measure; reset; if on a user gate and on a measure; reset q: c is 00 or 11, every qubit ends in |0>.
R=$DATA/reset_if.qasm
run "$R"
[ "$(cat "$tmp/out")" = '{"n_qubits":2,"expval_z":[1.0,1.0]}' ] || fail "reset_if.qasm: $(cat "$tmp/out")"
run "$R" --shots 2000 --seed 1
check '(.counts | keys) == ["00", "11"] and (.counts | add) == 2000 and .expval_z == [1.0, 1.0] and .std_error == [0.0, 0.0]'
check "$(near '.counts["00"]' 1000 "5 * 22.4")"
# A Bell pair corrected by if: q[1] always ends in 0.
printf 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\ncreg c[1];\nh q[0];\ncx q[0],q[1];\nmeasure q[0] -> c[0];\nif(c==1) x q[1];\n' >"$tmp/bellif.qasm"
run "$tmp/bellif.qasm"
check "$(near '.expval_z[0]' 0 1e-12) and $(near '.expval_z[1]' 1 1e-12)"
run "$tmp/bellif.qasm" --shots 500
check '.expval_z[1] == 1.0 and (.counts | keys) == ["0", "1"]'
# A reset of qubits still in |0> is dropped: the program stays static, output bit-identical.
{ printf 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nreset q;\n'; tail -n +4 "$DATA/x.qasm"; } >"$tmp/x_reset.qasm"
for args in "" "--grad" "--shots 300 --seed 2" "--depol1 0.1 --trajectories 50"; do
  # shellcheck disable=SC2086
  [ "$("$QMOE" qasm "$tmp/x_reset.qasm" $args)" = "$("$QMOE" qasm "$DATA/x.qasm" $args)" ] ||
    fail "reset of fresh qubits changed qasm $args"
done
# What a dynamic program does not support, and the limit of the exact walk.
expect_error 1 "^qmoe: error: $T: --grad is not supported for a dynamic program (reset, if or a mid-circuit measurement): drop --grad\$" -- "$QMOE" qasm "$T" --grad
expect_error 1 "^qmoe: error: $T: noise is not supported for a dynamic program" -- "$QMOE" qasm "$T" --depol1 0.01
expect_error 1 "noise is not supported for a dynamic program" -- "$QMOE" qasm "$R" --readout-error 0.1 --shots 10
{ printf 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[1];\ncreg c[1];\n'; for k in $(seq 13); do printf 'h q[0];\nmeasure q[0] -> c[0];\n'; done; printf 'x q[0];\n'; } >"$tmp/many.qasm"
expect_error 1 "^qmoe: error: $tmp/many.qasm: the exact expectations need more than 4096 branches (outcomes of mid-circuit measurements and resets): use --shots N\$" -- "$QMOE" qasm "$tmp/many.qasm"
run "$tmp/many.qasm" --shots 1000
check "(.counts | add) == 1000"
qasm_error ifbit "${QASM_HEADER}qreg q[1];\ncreg c[2];\nif(c[0]==1) x q[0];\n" \
  "^qmoe: error: $tmp/ifbit.qasm:5:5: 'if' tests a whole classical register in OpenQASM 2.0 ('if (c == n)'), not one bit\$"
qasm_error ifbar "${QASM_HEADER}qreg q[1];\ncreg c[2];\nif(c==1) barrier q;\n" \
  "^qmoe: error: $tmp/ifbar.qasm:5:10: expected a gate call, measure or reset after 'if (...)', found 'barrier'\$"
qasm_error resetc "${QASM_HEADER}qreg q[1];\ncreg c[2];\nreset c;\n" \
  "^qmoe: error: $tmp/resetc.qasm:5:7: 'c' is a classical register; expected a quantum one\$"
echo "qasm_cli: ok"
