"""The benchmark harness must keep working: its `tiny` scenario, kiln only, end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.registry, pytest.mark.root]


def test_tiny_scenario_runs_and_reports(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--scenarios", "tiny",
         "--builders", "kiln", "--runs", "1", "--no-floors", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.split("\n\n")[1]
    header, _, row = table.splitlines()[:3]
    assert header.split()[:3] == ["scenario", "kiln", "wall/cpu"]
    assert row.split()[0] == "tiny"
    wall, cpu = (float(x) for x in row.split()[1:4:2])
    assert wall > 0 and cpu > 0
    rss, unit = row.split()[4:6]
    assert unit == "MiB" and float(rss) > 0  # kiln's peak RSS was measured
