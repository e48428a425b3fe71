"""Shared fixtures: the CLI binary of the same build (QMOE_BINARY, set by
ctest) and the MNIST files (scripts/fetch-mnist.sh)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(os.environ.get("QMOE_SOURCE_DIR", Path(__file__).resolve().parents[2]))


@pytest.fixture(scope="session")
def qmoe_bin():
    path = os.environ.get("QMOE_BINARY", str(SOURCE / "build" / "qmoe"))
    if not os.path.exists(path):
        pytest.fail(f"the qmoe CLI is not built at {path}")
    return path


@pytest.fixture(scope="session")
def cli(qmoe_bin):
    """Runs `qmoe ARGS`, returns stdout (fails the test on a non-zero exit)."""
    def run(*args, input=None):
        r = subprocess.run([qmoe_bin, *map(str, args)], capture_output=True, text=True, input=input)
        assert r.returncode == 0, r.stderr
        return r.stdout
    return run


@pytest.fixture(scope="session")
def cli_json(cli):
    return lambda *args, input=None: json.loads(cli(*args, input=input))


@pytest.fixture(scope="session")
def mnist4():
    """The first 96 training and 48 test samples of mnist4, unit scaling."""
    import qmoe
    return qmoe.datasets.load("mnist4", scaling="unit", train_limit=96, test_limit=48)
