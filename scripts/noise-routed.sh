#!/usr/bin/env bash
# Routed against coherent QMoE execution under device noise and with shots
# (issue 18, section 5; results/noise.md). Trains small MNIST-4 / Fashion-4
# models (QMoE with 4 experts, QNN, parameter-matched QNN; RX+RY; seeds 0..S-1)
# into build/noise-runs (not committed), then evaluates the first N test
# samples of each:
#   noise sweep: p2 in {0, 1e-4, 1e-3, 3e-3, 1e-2}, p1 = p2 / 10, amplitude and
#   phase damping G = L = p2 / 2 after every gate, read-out error 1% (p2 > 0);
#   trajectories (T per sample);
#   shots sweep: exact gates, 10 .. 10^4 shots per sample.
# The QMoE and the QNN are also trained noise-aware (-nat). Writes
# results/noise-routed.csv. Small limits on purpose: the machine is a
# shared 2-core box (defaults: 2000 training samples, 3 epochs, 200 test
# samples, 100 trajectories, 3 seeds).
# Usage: scripts/noise-routed.sh [seeds (3)] [test samples (200)] [trajectories (100)] ["tasks" ("mnist4 fashion4")]
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-3}
limit=${2:-200}
traj=${3:-100}
read -r -a tasks <<<"${4:-mnist4 fashion4}"
runs=build/noise-runs
mkdir -p "$runs"
out=results/noise-routed.csv
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
acc() { /usr/bin/python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["accuracy_percent"], j["accuracy_std_error_percent"])'; }
# Noise-aware training (docs/noise.md): the models marked -nat are trained on
# sampled error realisations of the sweep's p2 = 3e-3 point.
nat=(--depol1 0.0003 --depol2 0.003 --amp-damping 0.0015 --phase-damping 0.0015 --readout-error 0.01)
# The coherent QMoE as a device would run it, approximately: each doubly-
# controlled expert rotation is about 13 CNOTs in {CX, U} (docs/qasm.md), about
# 9 of them on each of its 3 qubits, so its errors are lumped into one error
# per qubit after the gate with probability 1 - (1 - p)^9 (depolarizing, and
# damping likewise) through --noise-model's depol_multi; other gates as above.
decomposed_rows() {  # TASK DIR SEED OUT
  local p2 p1 g nm r
  for p2 in 0.0001 0.001 0.003 0.01; do
    p1=$(/usr/bin/python3 -c "print($p2 / 10)")
    g=$(/usr/bin/python3 -c "print($p2 / 2)")
    nm=$(mktemp --suffix .json)
    /usr/bin/python3 -c "
import json, sys
p2, g = $p2, $g
lump = lambda p: 1 - (1 - p) ** 9
json.dump({'description': 'QMoE expert gates as 9 CNOTs per qubit', 'depol1': p2 / 10, 'depol2': p2,
           'depol_multi': lump(p2), 'amp_damping': g, 'phase_damping': g, 'readout_error': 0.01}, open('$nm', 'w'))"
    r=$(build/qmoe eval --checkpoint "$2" --limit "$limit" --json --execution coherent --noise-model "$nm" \
          --trajectories "$traj" | acc)
    rm -f "$nm"
    echo "$1,qmoe,decomposed,$3,$p2,$p1,$g,0.01,$traj,0,$limit,${r// /,}" | tee -a "$4"
  done
}
echo "task,model,execution,seed,depol2,depol1,damping,readout_error,trajectories,shots,samples,accuracy_percent,std_error_percent" >"$tmp"
for task in "${tasks[@]}"; do
  for s in $(seq 0 $((seeds - 1))); do
    for model in qmoe qnn qnn-matched qmoe-nat qnn-nat qnn-matched-nat; do
      dir="$runs/$task-$model-s$s"
      extra=()
      [ "${model%-nat}" != "$model" ] && extra=("${nat[@]}")
      [ -f "$dir/checkpoint" ] ||
        build/qmoe train --task "$task" --model "${model%-nat}" --ops rxry --experts 4 --train-limit 2000 --test-limit "$limit" \
          --epochs 3 --seed "$s" "${extra[@]}" --out "$dir" >"$dir.log" 2>&1
      execs=(coherent)
      [ "${model%-nat}" = qmoe ] && execs=(coherent routed)
      for ex in "${execs[@]}"; do
        for p2 in 0 0.0001 0.001 0.003 0.01; do
          p1=$(/usr/bin/python3 -c "print($p2 / 10)")
          g=$(/usr/bin/python3 -c "print($p2 / 2)")
          ro=$( [ "$p2" = 0 ] && echo 0 || echo 0.01 )
          if [ "$p2" = 0 ]; then noise=(); t=0; else
            noise=(--depol1 "$p1" --depol2 "$p2" --amp-damping "$g" --phase-damping "$g" --readout-error "$ro"
                   --trajectories "$traj"); t=$traj; fi
          r=$(build/qmoe eval --checkpoint "$dir" --limit "$limit" --json --execution "$ex" "${noise[@]}" | acc)
          echo "$task,$model,$ex,$s,$p2,$p1,$g,$ro,$t,0,$limit,${r// /,}" | tee -a "$tmp"
        done
        for shots in 10 100 1000 10000; do
          r=$(build/qmoe eval --checkpoint "$dir" --limit "$limit" --json --execution "$ex" --shots "$shots" --seed 1 | acc)
          echo "$task,$model,$ex,$s,0,0,0,0,0,$shots,$limit,${r// /,}" | tee -a "$tmp"
        done
      done
      if [ "$model" = qmoe ]; then decomposed_rows "$task" "$dir" "$s" "$tmp"; fi
    done
  done
done
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "noise-routed: wrote $out"
