#!/usr/bin/env bash
# qmoe data on the real data sets (skipped, exit 0, if they are not installed):
# per-class counts in --json, --png output, and speed of a cached run.
# Usage: data_real.sh QMOE_BINARY SOURCE_DIR
set -eu
source "$(dirname "$0")/common.bash" "$@"
DATA_DIR="${QMOE_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/qmoe}"
check() {  # task expected-train expected-test
  "$QMOE" data "$1" --json >"$tmp/$1.json"
  /usr/bin/python3 - "$tmp/$1.json" "$2" "$3" <<'PY' || fail "$1: $(cat "$tmp/$1.json")"
import json, sys
j = json.load(open(sys.argv[1]))
tr = [int(v) for v in sys.argv[2].split(",")]
te = [int(v) for v in sys.argv[3].split(",")]
assert j["features"] == 64 and j["classes"] == len(tr), j
assert [j["train"][str(i)] for i in range(len(tr))] == tr, j
assert [j["test"][str(i)] for i in range(len(te))] == te, j
assert j["scaling"] == "unit" and j["min"] == 0.0, j  # the default scaling: p / 255
PY
}
ran=0
if [ -s "$DATA_DIR/mnist/train-images-idx3-ubyte" ]; then
  check mnist4 5923,6000,5958,6000 980,1000,1000,1000
  check mnist2 6000,5918 1000,958
  "$QMOE" data mnist2 --png "$tmp/m2.png" --samples 4 >/dev/null
  [ "$(head -c 8 "$tmp/m2.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] || fail "not a PNG"
  [ ! -e "$tmp/m2.png.tmp" ] || fail "temporary PNG left behind"
  start=$(date +%s%N)
  "$QMOE" data mnist4 >/dev/null
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  [ "$ms" -lt 3000 ] || fail "qmoe data mnist4 took $ms ms"
  ran=1
else
  echo "data_real: MNIST not installed, skipped (scripts/fetch-mnist.sh)"
fi
if [ -s "$DATA_DIR/fashion-mnist/train-images-idx3-ubyte.gz" ] || \
   [ -s /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  check fashion4 6000,6000,6000,6000 1000,1000,1000,1000
  check fashion2 6000,6000 1000,1000
  ran=1
else
  echo "data_real: Fashion-MNIST not installed, skipped (apt-get install dataset-fashion-mnist)"
fi
echo "data_real: ok (ran=$ran)"
