# Shared by the CLI tests (sourced, not run: CMake registers only *.sh).
# Usage at the top of a test: source "$(dirname "$0")/common.bash" "$@"
# gives QMOE (the binary), SRC (the source dir), PY, a temporary $tmp removed
# at exit, fail MESSAGE, and expect_error.
set -u
QMOE=$1
SRC=${2:-}
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_error CODE PATTERN -- command...: exits with CODE, prints nothing on
# stdout and exactly one "qmoe: error: ..." line on stderr matching PATTERN.
expect_error() {
  local code=$1 pat=$2; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ "$rc" -eq "$code" ] || fail "$* exited $rc, expected $code; stderr: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || fail "$*: expected one stderr line, got: $(cat "$tmp/err")"
  grep -q "^qmoe: error: " "$tmp/err" || fail "$*: stderr '$(cat "$tmp/err")' is not a qmoe error line"
  grep -q -- "$pat" "$tmp/err" || fail "$*: stderr '$(cat "$tmp/err")' does not match '$pat'"
  [ ! -s "$tmp/out" ] || fail "$*: printed output despite the error"
}

# tiny_common SRC DEST: a copy of an experiments common.json for a test run of
# `reproduce`: 4 data qubits, 1 epoch, no per-task epochs.
tiny_common() {
  "$PY" - "$1" "$2" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
c["model"]["data_qubits"] = 4
c["train"]["epochs"] = 1
if "epochs_by_task" in c:
    c["epochs_by_task"] = {}
json.dump(c, open(sys.argv[2], "w"))
PYEOF
}
