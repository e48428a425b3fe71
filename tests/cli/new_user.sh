#!/usr/bin/env bash
# What a new user met (issue 16): the defaults, --epochs 0, --png DIR, raw
# library errors, reproduce's checks, --help. Each check failed on 67f5dd6.
# Usage: new_user.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
small=(--train-limit 60 --test-limit 40 --threads 1 --qubits 4)

# 1. The default pixel scaling is the one validation chose (unit: p/255 in [0, 1]).
"$QMOE" data mnist2 --train-per-class 20 --test-per-class 20 --json >"$tmp/d.json" 2>"$tmp/err" ||
  fail "data mnist2: $(cat "$tmp/err")"
"$PY" - "$tmp/d.json" <<'PYEOF' || fail "default scaling: $(cat "$tmp/d.json")"
import json, sys
j = json.load(open(sys.argv[1]))
assert j["scaling"] == "unit" and 0 <= j["min"] and j["max"] <= 1, j
PYEOF
"$QMOE" train "${small[@]}" --epochs 1 --out "$tmp/def" >/dev/null 2>"$tmp/def.err" || fail "train: $(cat "$tmp/def.err")"
"$PY" -c 'import json,sys; s=json.load(open(sys.argv[1]))["task"]["scaling"]; assert s == "unit", s' \
  "$tmp/def/config.json" || fail "train's default scaling: $(cat "$tmp/def/config.json")"
# TorchQuantum's normalisation stays an option
"$QMOE" data mnist2 --train-per-class 5 --test-per-class 5 --scaling tq --json | grep -q '"scaling":"tq"' ||
  fail "--scaling tq"

# 2. --epochs 0 prints the accuracy of the initial parameters, as eval does.
"$QMOE" train "${small[@]}" --task mnist2 --epochs 0 --out "$tmp/e0" >"$tmp/e0.out" 2>"$tmp/err" ||
  fail "train --epochs 0: $(cat "$tmp/err")"
"$QMOE" eval --checkpoint "$tmp/e0" --json >"$tmp/e0.json" || fail "eval of the --epochs 0 run"
want=$("$PY" -c 'import json,sys; print("test accuracy: %.2f%%" % json.load(open(sys.argv[1]))["accuracy_percent"])' "$tmp/e0.json")
[ "$(cat "$tmp/e0.out")" = "$want" ] || fail "--epochs 0 printed '$(cat "$tmp/e0.out")', eval says '$want'"
[ "$want" != "test accuracy: 0.00%" ] || fail "test set-up: the untrained model scores 0"

# 4. --png with a directory names the problem (not "cannot write DIR (Success)").
mkdir "$tmp/pngdir"
expect_error 1 "cannot write $tmp/pngdir: it is a directory" -- "$QMOE" data mnist2 --png "$tmp/pngdir"

# 5. Errors in qmoe's words naming the file (and the field), not the libraries' text.
touch "$tmp/file"
expect_error 1 "cannot create directory $tmp/file/run: Not a directory" -- "$QMOE" train "${small[@]}" --out "$tmp/file/run"
grep -q "filesystem error" "$tmp/err" && fail "raw filesystem text: $(cat "$tmp/err")"

# 3 and 5. reproduce: every cell checked before any run; a wrong type names file and field;
# a cell of the paper's table without a file is listed; paths relative to the experiments dir.
mkdir -p "$tmp/exp/table2" "$tmp/elsewhere"
tiny_common "$SRC/experiments/common.json" "$tmp/exp/common.json"
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry", "experts": 2}' >"$tmp/exp/table2/a.json"
echo '{"task": "mnist4", "model": "qmoe", "ops": "rq", "experts": 3}' >"$tmp/exp/table2/z.json"
repro=("$QMOE" reproduce --table 2 --seeds 1 --jobs 1 --experiments "$tmp/exp" --train-limit 32 --test-limit 16)
expect_error 1 "z.json: .*ops" -- "${repro[@]}" --out "$tmp/res"
[ ! -e "$tmp/res/runs" ] || fail "reproduce trained a cell before checking the others"
rm "$tmp/exp/table2/z.json"
cp "$tmp/exp/common.json" "$tmp/common.good"
sed -i 's/"lr": 0.002/"lr": "0.002"/' "$tmp/exp/common.json"
expect_error 1 "common.json: train config: \"lr\" has the wrong type" -- "${repro[@]}" --out "$tmp/res"
grep -q "json.exception" "$tmp/err" && fail "raw JSON library text: $(cat "$tmp/err")"
cp "$tmp/common.good" "$tmp/exp/common.json"
(cd "$tmp/elsewhere" && "${repro[@]}" >"$tmp/rep.out" 2>"$tmp/rep.err") || fail "reproduce from another directory: $(cat "$tmp/rep.err")"
[ -s "$tmp/results/table2.json" ] || fail "reproduce without --out: no results/ beside the experiments directory"
grep -q "no config for 11 of the paper's cells" "$tmp/rep.err" || fail "missing cells not listed: $(cat "$tmp/rep.err")"

# 6. A run that needs more memory than the machine has is refused before allocating.
expect_error 1 "training 2[0-9] qubits .* needs about .* GiB, more than the .* available: .*--no-memory-check" -- \
  "$QMOE" train --train-limit 10 --test-limit 5 --qubits 24 --threads 2 --out "$tmp/big"
[ ! -e "$tmp/big" ] || fail "a refused run left $tmp/big"
grep -q "about .* of memory" "$tmp/def.err" || fail "the model summary gives no memory estimate: $(cat "$tmp/def.err")"

# 15. --json on every command that reports, one line each.
"$QMOE" qasm --json - <<<'OPENQASM 2.0; include "qelib1.inc"; qreg q[1]; rx(0.5) q[0];' >"$tmp/q.json" || fail "qasm --json"
[ "$(wc -l <"$tmp/q.json")" -eq 1 ] || fail "qasm --json: $(cat "$tmp/q.json")"
for f in "$tmp/d.json" "$tmp/e0.json"; do
  [ "$(wc -l <"$f")" -eq 1 ] || fail "$f is not one line"
done

# 19. --help shows every option's default.
"$QMOE" train --help >"$tmp/help"
for opt in --epochs:10 --batch:32 --lr:0.002 --logit-scale:40 --scaling:unit --depth:3 --experts:4 --model:qmoe; do
  grep -E -- "${opt%%:*}[ =].*\[?${opt#*:}\]?" "$tmp/help" | grep -q -- "${opt#*:}" ||
    fail "train --help shows no default for ${opt%%:*}: $(grep -- "${opt%%:*}" "$tmp/help")"
done
echo "new_user: ok"
