"""Each example in examples/ runs on a small slice (QMOE_EXAMPLE_SMALL=1)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path, qmoe_bin):
    env = dict(os.environ, QMOE_EXAMPLE_SMALL="1", QMOE_BINARY=qmoe_bin)
    r = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "accuracy" in r.stdout
