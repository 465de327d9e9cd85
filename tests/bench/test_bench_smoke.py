"""The benchmark harness must keep working: `tiny` and a shrunk `ci-rebuild`, kiln only."""

from __future__ import annotations

import os
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


def test_ci_rebuild_scenario_counts_registry_traffic(tmp_path: Path) -> None:
    """kiln only, with the dependency step shrunk (KILN_BENCH_SMALL): fill, edit, rebuild."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--scenarios", "ci-rebuild",
         "--builders", "kiln", "--runs", "1", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=dict(os.environ, KILN_BENCH_SMALL="1"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    traffic = result.stdout.split("MB downloaded / uploaded:\n")[1].split("\n\n")[0]
    row = traffic.splitlines()[2].split()
    assert row[0] == "ci-rebuild"
    downloaded, uploaded = float(row[1]), float(row[3])
    # The rebuild starts empty: it pulls the base and the cached dependency layer (2 MB) ...
    assert downloaded >= 2.0
    # ... and pushes what the edit changed (sources, build output), not the dependency layer.
    assert 0 < uploaded < 2.0
    log = (tmp_path / "kiln.log").read_text()
    rebuild = log.split("\n$ ")[-1]
    assert "STEP 2: CACHED" in rebuild and "STEP 3: cache miss" in rebuild
