#!/usr/bin/env bash
# Reproduces the paper's Table I and II (3 seeds) and writes results/.
# Resumable: finished runs are kept. Usage: scripts/reproduce.sh [extra reproduce flags]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
build/qmoe reproduce --table 1 --seeds 3 --out results "$@"
build/qmoe reproduce --table 2 --seeds 3 --out results "$@"
/usr/bin/python3 scripts/report.py results
echo "reproduce: total wall time $(( $(date +%s) - start )) s"
