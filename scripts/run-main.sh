#!/usr/bin/env bash
# Set up (apt-get, npm), build, and train the default QMoE on MNIST-4.
# Usage: scripts/run-main.sh [extra qmoe train flags]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=runs/mnist4-qmoe
rm -rf "$out"
build/qmoe train --task mnist4 --model qmoe --epochs 5 --seed 0 --out "$out" "$@"
