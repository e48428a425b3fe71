# Shared by the MPI tests (sourced): tests/cli/common.bash, plus MPIRUN, an
# mpirun for 2 ranks on this machine. CI runs as root (mpirun refuses root
# without --allow-run-as-root) on fewer cores than ranks (--oversubscribe);
# --bind-to none leaves the ranks' threads free on a shared machine.
# Usage: source "$(dirname "$0")/common.bash" QMOE SOURCE_DIR MPIEXEC
source "$(dirname "${BASH_SOURCE[0]}")/../cli/common.bash" "$1" "$2"
MPIEXEC=${3:-mpirun}
MPIRUN=("$MPIEXEC" --allow-run-as-root --oversubscribe --bind-to none)
