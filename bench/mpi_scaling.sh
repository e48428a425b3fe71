#!/usr/bin/env bash
# 1 rank x 2 threads against 2 ranks x 1 thread (issue 20), alternately,
# REPS times each: the epoch's seconds from metrics.csv (training plus the
# small evaluation) and rank 0's communication summary.
# Usage: bench/mpi_scaling.sh BUILD_DIR [REPS]
set -euo pipefail
QMOE=$1/qmoe
REPS=${2:-3}
MPIRUN=(mpirun --allow-run-as-root --oversubscribe --bind-to none)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A cases=(
  [qmoe10]="--train-limit 1024 --test-limit 64 --batch 32 --epochs 1 --seed 1"
  [qmoe16]="--qubits 16 --train-limit 64 --test-limit 16 --batch 32 --epochs 1 --seed 1"
)
secs() { tail -1 "$1/metrics.csv" | cut -d, -f6; }
for name in qmoe10 qmoe16; do
  read -r -a args <<<"${cases[$name]}"
  for rep in $(seq 1 "$REPS"); do
    rm -rf "$tmp/a" "$tmp/b"
    "$QMOE" train "${args[@]}" --threads 2 --out "$tmp/a" >/dev/null 2>&1
    "${MPIRUN[@]}" -np 2 "$QMOE" train "${args[@]}" --threads 1 --out "$tmp/b" >/dev/null 2>"$tmp/err"
    cmp -s <(cut -d, -f1-5 "$tmp/a/metrics.csv") <(cut -d, -f1-5 "$tmp/b/metrics.csv") || echo "$name: metrics differ!"
    echo "$name rep $rep: 1x2 $(secs "$tmp/a") s, 2x1 $(secs "$tmp/b") s; $(grep 'ranks:' "$tmp/err"); load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
