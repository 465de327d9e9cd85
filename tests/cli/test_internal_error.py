"""A bug in kiln is one located line and exit status 70, not a traceback (the stack at debug).

The fault is scripted (the builder replaced by one that raises): every failure a user can cause
is a KilnError, so there is no honest way to reach this path with real input, which is the point.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import sys
import kiln.builder.builder

def broken(*args, **kwargs):
    raise RuntimeError("boom")

kiln.builder.builder.build = broken
from kiln.cli.main import run
sys.argv = ["kiln", *sys.argv[1:]]
run()
"""


def _kiln_with_a_bug(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("verbosity", ["info", "debug"])
def test_an_internal_error_is_one_line_and_status_70(tmp_path: Path, verbosity: str) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = _kiln_with_a_bug("build", "--no-push", "-v", verbosity, str(tmp_path))
    assert result.returncode == 70, result.stderr
    assert "internal error: RuntimeError: boom" in result.stderr
    assert "this is a bug in kiln" in result.stderr
    assert result.stdout == ""
    # the stack only when asked for
    assert ("Traceback" in result.stderr) == (verbosity == "debug"), result.stderr
