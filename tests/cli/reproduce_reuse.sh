#!/usr/bin/env bash
# qmoe reproduce reuses a finished run only if it was made with the current
# settings: a second call trains nothing, and after a change to common.json
# every run is trained again (not silently kept).
# Usage: reproduce_reuse.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"

mkdir -p "$tmp/exp/table2"
tiny_common "$SRC/experiments/common.json" "$tmp/exp/common.json"
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry", "experts": 2}' >"$tmp/exp/table2/mnist4-qmoe-ry-L2.json"
run() {
  "$QMOE" reproduce --table 2 --seeds 1 --jobs 1 --experiments "$tmp/exp" --out "$tmp/results" \
    --train-limit 64 --test-limit 16 >"$tmp/log" 2>&1 || fail "reproduce: $(cat "$tmp/log")"
  "$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])); print(t["runs_trained"], t["runs_reused"])' \
    "$tmp/results/table2-timing.json"
}
[ "$(run)" = "1 0" ] || fail "first run: expected 1 trained, 0 reused"
[ "$(run)" = "0 1" ] || fail "second run: expected the finished run to be reused"
sed -i 's/"logit_scale": [0-9.]*/"logit_scale": 3/' "$tmp/exp/common.json"
grep -q '"logit_scale": 3' "$tmp/exp/common.json" || fail "test set-up: logit_scale not changed"
[ "$(run)" = "1 0" ] || fail "after a settings change: expected the run to be trained again"
# a misspelt cell key, a missing setting: one error line naming the file
echo '{"task": "mnist4", "model": "qmoe", "ops": "ry", "expert": 2}' >"$tmp/exp/table2/typo.json"
expect_error 1 'typo.json: unknown key "expert"' -- "$QMOE" reproduce --table 2 --seeds 1 --experiments "$tmp/exp" --out "$tmp/results" --train-limit 64 --test-limit 16
rm "$tmp/exp/table2/typo.json"
sed -i 's/"lr": [0-9.e-]*,//' "$tmp/exp/common.json"
expect_error 1 "common.json: train config: \"lr\" is missing" -- "$QMOE" reproduce --table 2 --seeds 1 --experiments "$tmp/exp" --out "$tmp/results" --train-limit 64 --test-limit 16
echo "reproduce_reuse: ok"
