#!/usr/bin/env bash
# The issue-19 model flags (--routing, --top-k, --routing-entropy,
# --expert-reupload, --routing-reupload, --model sum) are settings like the
# others: written to config.json and the checkpoint, laid over a --config file,
# compared by --resume; a wrong value is one error line.
# Usage: train_routing_flags.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
args=(--train-limit 64 --test-limit 32 --threads 1 --qubits 4 --ops ry --depth 1 --seed 5)

"$QMOE" train "${args[@]}" --epochs 1 --routing sampled --top-k 2 --routing-entropy 0.1 --out "$tmp/a" >/dev/null 2>"$tmp/err" ||
  fail "sampled run: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]))["model"]; assert (m["routing"], m["top_k"], m["routing_entropy"]) == ("sampled", 2, 0.1), m' \
  "$tmp/a/config.json" || fail "config.json: $(cat "$tmp/a/config.json")"
# --config: the file's settings with the given flags on top (--routing soft is the default, so left out)
"$QMOE" train --config "$tmp/a/config.json" --routing soft --expert-reupload --threads 1 --out "$tmp/k" >/dev/null 2>"$tmp/err" ||
  fail "--config --routing soft: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]))["model"]; assert "routing" not in m and m["top_k"] == 2 and m["expert_reupload"] is True, m' \
  "$tmp/k/config.json" || fail "--config with flags: $(cat "$tmp/k/config.json")"
# --resume refuses a routing flag that differs from the checkpoint, accepts the same ones
cp "$tmp/a/checkpoint" "$tmp/ck"
expect_error 1 "these flags differ: --routing soft (checkpoint: sampled), --top-k 1 (checkpoint: 2)" -- \
  "$QMOE" train "${args[@]}" --resume --epochs 2 --routing soft --top-k 1 --out "$tmp/a"
cmp -s "$tmp/ck" "$tmp/a/checkpoint" || fail "a refused --resume changed the checkpoint"
expect_error 1 "these flags differ: --routing-reupload true (checkpoint: false)" -- \
  "$QMOE" train "${args[@]}" --resume --epochs 2 --routing-reupload --out "$tmp/a"
"$QMOE" train "${args[@]}" --resume --epochs 2 --routing sampled --top-k 2 --routing-entropy 0.1 --out "$tmp/a" >/dev/null 2>"$tmp/err" ||
  fail "--resume with the checkpoint's own flags: $(cat "$tmp/err")"
grep -q 'resuming after epoch 1' "$tmp/err" || fail "not resumed: $(cat "$tmp/err")"
# the sum of experts
"$QMOE" train "${args[@]}" --epochs 1 --model sum --experts 2 --aggregation none --out "$tmp/s" >/dev/null 2>"$tmp/err" ||
  fail "--model sum: $(cat "$tmp/err")"
"$PY" -c 'import json,sys; m=json.load(open(sys.argv[1]))["model"]; assert m["model"] == "sum" and m["routing_qubits"] == 1, m' \
  "$tmp/s/config.json" || fail "sum config.json: $(cat "$tmp/s/config.json")"
# wrong values
expect_error 2 "routing must be soft or sampled" -- "$QMOE" train "${args[@]}" --epochs 1 --routing hard --out "$tmp/x"
expect_error 2 "top-k" -- "$QMOE" train "${args[@]}" --epochs 1 --routing sampled --top-k 9 --out "$tmp/x"
expect_error 1 "power of two" -- "$QMOE" train "${args[@]}" --epochs 1 --model sum --experts 3 --out "$tmp/x"
expect_error 1 "routing re-uploading needs the quadrant or grid" -- \
  "$QMOE" train "${args[@]}" --epochs 1 --routing-encoder full --routing-reupload --out "$tmp/x"
[ ! -e "$tmp/x" ] || fail "a refused run created its --out directory"
echo "train_routing_flags: ok"
