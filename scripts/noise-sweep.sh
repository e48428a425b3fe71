#!/usr/bin/env bash
# Test accuracy under simulated hardware noise (docs/noise.md) of the MNIST-4
# QMoE and QNN runs of scripts/reproduce.sh (seed 0, RX+RY), as the gate error
# grows: writes results/noise.csv. About a minute on 2 cores.
# Usage: scripts/noise-sweep.sh [test samples (default 400)] [trajectories (default 100)]
set -euo pipefail
cd "$(dirname "$0")/.."
limit=${1:-400}
traj=${2:-100}
runs=(results/runs/mnist4-qmoe-rxry-L4-s0 results/runs/mnist4-qnn-rxry-L4-s0 results/runs/mnist4-qnn-matched-rxry-L4-s0)
for r in "${runs[@]}"; do
  [ -f "$r/checkpoint" ] || { echo "noise-sweep: $r/checkpoint is missing: run scripts/reproduce.sh first" >&2; exit 1; }
done
out=results/noise.csv
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
echo "run,depol1,depol2,readout_error,trajectories,samples,accuracy_percent" >"$tmp"
# depol1 = depol2 / 10 and a 1% read-out error, as on current superconducting devices
for p2 in 0 0.0005 0.001 0.002 0.005 0.01; do
  p1=$(/usr/bin/python3 -c "print($p2 / 10)")
  ro=$( [ "$p2" = 0 ] && echo 0 || echo 0.01 )
  for r in "${runs[@]}"; do
    if [ "$p2" = 0 ]; then noise=(); else noise=(--depol1 "$p1" --depol2 "$p2" --readout-error "$ro" --trajectories "$traj"); fi
    acc=$(build/qmoe eval --checkpoint "$r" --limit "$limit" --json "${noise[@]}" |
          /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["accuracy_percent"])')
    echo "$(basename "$r"),$p1,$p2,$ro,$( [ "$p2" = 0 ] && echo 0 || echo "$traj" ),$limit,$acc" | tee -a "$tmp"
  done
done
mv "$tmp" "$out"
trap - EXIT
echo "noise-sweep: wrote $out"
