#!/usr/bin/env bash
# Installs everything qmoe needs on Debian 12 (apt-get, npm) and builds it.
# Idempotent: safe to run again. Usage: scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

PACKAGES=(g++ cmake make git ca-certificates curl
          libcli11-dev nlohmann-json3-dev libfmt-dev zlib1g-dev
          libgtest-dev libbenchmark-dev
          clang libomp-dev libclang-rt-dev  # sanitizer build and libFuzzer targets (.ci/run)
          libopenmpi-dev openmpi-bin
          python3-numpy python3-matplotlib
          dataset-fashion-mnist)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# npm may come with a Node.js installed outside apt (then Debian's npm conflicts).
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

scripts/fetch-mnist.sh

cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2
