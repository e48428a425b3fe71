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
          pybind11-dev python3-pybind11 python3-dev python3-torch python3-sklearn python3-pytest
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

# The Python package (build/python/qmoe, docs/python.md): a .pth file in
# Debian's Python's site directory (root: /usr/local/lib/python3.X/dist-packages;
# otherwise the user's site directory) makes `/usr/bin/python3 -c "import qmoe"`
# work from any directory. Without it: export PYTHONPATH=$PWD/build/python
if [ -f build/python/qmoe/__init__.py ]; then
  if [ "$(id -u)" -eq 0 ]; then
    site=$(/usr/bin/python3 -c "import site; print(site.getsitepackages()[0])")
  else
    site=$(/usr/bin/python3 -m site --user-site)
  fi
  mkdir -p "$site"
  echo "$PWD/build/python" > "$site/qmoe.pth"
  echo "setup: Python package qmoe from $PWD/build/python ($site/qmoe.pth)"
fi
