"""Fixtures for sandbox tests: a real busybox rootfs and a runner that really uses namespaces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.sandbox import NamespacesRunner
from tests.sandbox.support import BUSYBOX, make_busybox_rootfs, run_script


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture(scope="session")
def runner() -> NamespacesRunner:
    if not BUSYBOX.exists():
        pytest.skip("needs busybox-static at /bin/busybox")
    reason = NamespacesRunner.available()
    if reason is not None:
        pytest.skip(reason)
    return NamespacesRunner()


RunResult = tuple[int, str]


@pytest.fixture
def run_sh(runner: NamespacesRunner, rootfs: Path) -> Callable[..., RunResult]:
    """Run a shell script in ``rootfs`` as root; return (status, combined output)."""

    def run(script: str, **overrides: object) -> RunResult:
        env = ("PATH=/usr/bin:/bin", "HOME=/root")
        return run_script(runner, rootfs, script, env, **overrides)

    return run
