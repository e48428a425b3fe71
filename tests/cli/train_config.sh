#!/usr/bin/env bash
# qmoe train --config FILE reruns a run from its config.json (e.g. one killed in
# its first epoch, which leaves config.json and no checkpoint) with the same
# numbers; --init-from CHECKPOINT starts from a checkpoint's parameters.
# Usage: train_config.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
args=(--train-limit 80 --test-limit 30 --threads 1 --qubits 4 --seed 11 --ops ry --depth 2)

"$QMOE" train "${args[@]}" --epochs 2 --out "$tmp/a" >/dev/null 2>"$tmp/err" || fail "first run: $(cat "$tmp/err")"
# a run killed in its first epoch: config.json only
mkdir "$tmp/k"
cp "$tmp/a/config.json" "$tmp/k/config.json"
"$QMOE" train --config "$tmp/k/config.json" --threads 1 --out "$tmp/k" >/dev/null 2>"$tmp/err" ||
  fail "train --config: $(cat "$tmp/err")"
cut -d, -f1-5 "$tmp/a/metrics.csv" >"$tmp/a.cols"
cut -d, -f1-5 "$tmp/k/metrics.csv" | cmp -s - "$tmp/a.cols" || fail "--config rerun differs: $(diff "$tmp/a/metrics.csv" "$tmp/k/metrics.csv")"
# flags given with --config override the file's settings
"$QMOE" train --config "$tmp/a/config.json" --epochs 1 --lr 0.01 --threads 1 --out "$tmp/k2" >/dev/null 2>"$tmp/err" ||
  fail "train --config --lr: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; t=json.load(open(sys.argv[1]))["train"]; assert t["lr"] == 0.01 and t["epochs"] == 1 and t["seed"] == 11, t' \
  "$tmp/k2/config.json" || fail "--config with flags: $(cat "$tmp/k2/config.json")"
echo '{"model": 1}' >"$tmp/bad.json"
expect_error 1 "bad.json is not a qmoe config.json" -- "$QMOE" train --config "$tmp/bad.json" --out "$tmp/k3"
"$PY" - "$tmp/a/config.json" "$tmp/bad2.json" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1])); c["train"]["batch"] = "32"; json.dump(c, open(sys.argv[2], "w"))
PYEOF
expect_error 1 "bad2.json: train config: 'batch' must be an integer" -- "$QMOE" train --config "$tmp/bad2.json" --out "$tmp/k4"

# --init-from: the new run starts from the checkpoint's parameters (with 0 epochs: exactly them)
"$QMOE" train --init-from "$tmp/a" --train-limit 40 --test-limit 20 --threads 1 --epochs 0 --out "$tmp/ft" >/dev/null 2>"$tmp/err" ||
  fail "--init-from: $(cat "$tmp/err")"
"$PY" - "$tmp/a/checkpoint" "$tmp/ft/checkpoint" <<'PYEOF' || fail "--init-from did not start from the checkpoint's parameters"
import json, sys
a = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert a["state"]["theta"] == b["state"]["theta"] and b["state"]["epoch"] == 0
assert b["model"] == a["model"] and b["task"]["init_from"].endswith("/a")
PYEOF
"$QMOE" train --init-from "$tmp/a" --train-limit 40 --test-limit 20 --threads 1 --epochs 1 --out "$tmp/ft2" >/dev/null 2>"$tmp/err" ||
  fail "--init-from, 1 epoch: $(cat "$tmp/err")"
expect_error 1 "these flags differ: --depth 5 (checkpoint: 2)" -- "$QMOE" train --init-from "$tmp/a" --depth 5 --out "$tmp/ft3"
expect_error 1 "init-from: checkpoint $tmp/none does not exist" -- "$QMOE" train --init-from "$tmp/none" --out "$tmp/ft4"
expect_error 1 "takes 64 features and 4 classes; task mnist2 has 64 and 2" -- "$QMOE" train --init-from "$tmp/a" --task mnist2 --out "$tmp/ft5"
echo "train_config: ok"
