#!/usr/bin/env bash
# qmoe data: user errors give one "qmoe: error: ..." line and a non-zero exit.
# Usage: data_errors.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"


expect_error 1 "unknown task 'mnist9' (valid: mnist4, mnist2, fashion4, fashion2" -- "$QMOE" data mnist9
expect_error 1 "missing data file $tmp/none/mnist/train-images-idx3-ubyte; .*scripts/fetch-mnist.sh" -- \
  "$QMOE" data mnist4 --data-dir "$tmp/none"
QMOE_DATA_DIR="$tmp/env" expect_error 1 "missing data file $tmp/env/mnist/train-images-idx3-ubyte" -- "$QMOE" data mnist2
expect_error 2 "scaling" -- "$QMOE" data mnist4 --scaling bogus
expect_error 2 "task is required" -- "$QMOE" data
expect_error 2 "" -- "$QMOE" data mnist4 --no-such-flag

# A damaged MNIST file (wrong size) names the file and the fix.
mkdir -p "$tmp/bad/mnist"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  printf 'junk' >"$tmp/bad/mnist/$f"
done
expect_error 1 "damaged data file $tmp/bad/mnist/train-images-idx3-ubyte (4 bytes, expected 47040016); .*fetch-mnist.sh" -- \
  "$QMOE" data mnist4 --data-dir "$tmp/bad"

# CSV errors name the line and column.
printf 'x1,x2,label\n1,2,0\n1,oops,1\n' >"$tmp/bad.csv"
expect_error 1 "bad.csv:3: column 2: 'oops' is not a finite number" -- "$QMOE" data "$tmp/bad.csv"
expect_error 1 "missing.csv: cannot open" -- "$QMOE" data "$tmp/missing.csv"
printf '1,2,0\n3,4,1\n' >"$tmp/ok.csv"
expect_error 1 "png needs 64 features" -- "$QMOE" data "$tmp/ok.csv" --png "$tmp/x.png"
[ ! -e "$tmp/x.png" ] || fail "PNG written despite the error"
echo "data_errors: ok"
