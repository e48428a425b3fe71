#!/usr/bin/env bash
# qmoe plot RUN: curves, confusion matrix and (QMoE) routing heat map as PNG.
# Usage: plot_run.sh QMOE_BINARY SOURCE_DIR
source "$(dirname "$0")/common.bash" "$@"
small=(--train-limit 60 --test-limit 30 --threads 1 --qubits 4 --epochs 2)
"$QMOE" train "${small[@]}" --out "$tmp/q" >/dev/null 2>"$tmp/err" || fail "train: $(cat "$tmp/err")"
"$QMOE" plot "$tmp/q" >"$tmp/out" 2>"$tmp/err" || fail "plot: $(cat "$tmp/err")"
for f in curves confusion routing; do
  head -c 8 "$tmp/q/$f.png" | od -An -tx1 | grep -q '89 50 4e 47 0d 0a 1a 0a' || fail "$f.png is not a PNG"
done
ls "$tmp/q"/*.tmp* >/dev/null 2>&1 && fail "temporary files left: $(ls "$tmp/q")"
# a QNN has no routing; --out puts the figures elsewhere; it works from any directory
"$QMOE" train "${small[@]}" --model qnn --out "$tmp/n" >/dev/null 2>&1 || fail "train qnn"
(cd / && "$QMOE" plot "$tmp/n" --out "$tmp/figs") >/dev/null 2>"$tmp/err" || fail "plot qnn: $(cat "$tmp/err")"
[ -s "$tmp/figs/curves.png" ] && [ -s "$tmp/figs/confusion.png" ] && [ ! -e "$tmp/figs/routing.png" ] ||
  fail "plot qnn --out: $(ls "$tmp/figs")"
expect_error 1 "is not a run directory" -- "$QMOE" plot "$tmp/none"
mkdir "$tmp/empty"
expect_error 1 "has no metrics.csv" -- "$QMOE" plot "$tmp/empty"
echo "plot_run: ok"
