"""SIGTERM and SIGINT stop a build at once and leave nothing behind (issue 11.4).

Each test starts a real `kiln build`, waits until it is in a given phase (a RUN step with a
background process, the compression of a large layer, a push through a slow link), sends the
signal and then checks from outside: exit status 128+N and one line saying what was stopped, no
process of the step left, no mount under the test's directory, an empty work dir and TMPDIR
(no `kiln-etc-*`), and no tag in the registry.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sandbox.support import host_processes_matching
from tests.support.registry_server import RegistryServer
from tests.support.throttle import ThrottledRelay

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class Build:
    """A `kiln build` running in the background, and where to look afterwards."""

    process: subprocess.Popen[bytes]
    log: Path
    work: Path
    tmp: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def workspaces(self) -> list[Path]:
        return [p for p in self.work.iterdir() if p.name.startswith("kiln-")]

    def stop(self, signum: int) -> tuple[int, str]:
        """Send ``signum``; wait for kiln to exit (a step of ~28 hours never would)."""
        self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"kiln did not stop on signal {signum}:\n{self.log_text()}")
        return status, self.log_text()


def _start(tmp_path: Path, dockerfile: str, *flags: str) -> Build:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    work, tmp = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    tmp.mkdir()
    log = tmp_path / "kiln.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "kiln.cli.main", "build", *flags, "--work-dir", str(work),
             str(context)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "TMPDIR": str(tmp)},
        )  # fmt: skip
    return Build(process, log, work, tmp)


def _wait_for(build: Build, condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 300
    while not condition():
        if build.process.poll() is not None or time.monotonic() > deadline:
            build.process.kill()
            pytest.fail(f"kiln never reached {what}:\n{build.log_text()}")
        time.sleep(0.05)


def _assert_stopped_cleanly(build: Build, status: int, log: str, signum: int, during: str) -> None:
    assert status == 128 + signum, log
    errors = [line for line in log.splitlines() if line.startswith("ERRO")]
    assert len(errors) == 1, log
    name = signal.Signals(signum).name
    assert f"interrupted by {name} during {during}" in errors[0], log
    assert "no tag was changed" in errors[0]
    assert "Traceback" not in log
    assert list(build.work.iterdir()) == [], "the work dir was left behind"
    assert list(build.tmp.iterdir()) == [], "temporary files were left behind"
    with open("/proc/self/mountinfo", encoding="utf-8") as mounts:
        assert str(build.work) not in mounts.read(), "a mount was left behind"


def _assert_no_tag(registry: RegistryServer, repository: str) -> None:
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/{repository}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0, "the interrupted build moved the tag"
    assert "manifest unknown" in result.stderr.lower() or "not found" in result.stderr.lower()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("isolation", ["namespaces", "chroot"])
def test_signal_during_run_stops_the_step_at_once(
    isolation: str, signum: int, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    marker = str(random.randint(100_000, 999_999))  # also the sleeps' length: ~28 hours
    repository = f"interrupt/run-{isolation}-{signum}:1"
    build = _start(
        tmp_path,
        f"""
        FROM {base_image}
        RUN echo started && (sleep {marker} &) && sleep {marker}
        """,
        "-t", f"{registry.host}/{repository}", "--insecure-registry", registry.host,
        "--isolation", isolation,
    )  # fmt: skip
    sleeping = "sleep\x00" + marker
    _wait_for(build, lambda: len(host_processes_matching(sleeping)) == 2, "the RUN step")
    status, log = build.stop(signum)
    _assert_stopped_cleanly(build, status, log, signum, "[stage 0] STEP 1/1: RUN echo started")
    assert host_processes_matching(sleeping) == [], "the step's processes outlived kiln"
    _assert_no_tag(registry, repository)


def test_sigterm_during_compression(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    repository = "interrupt/compression:1"
    build = _start(
        tmp_path,
        f"""
        FROM {base_image}
        RUN seq 1 30000000 > /big
        """,
        "-t", f"{registry.host}/{repository}", "--insecure-registry", registry.host,
        "--compression-level", "9",
    )  # fmt: skip

    def compressing() -> bool:  # the layer's blob is being written in the scratch dir
        return any(
            layer.stat().st_size > 0
            for workspace in build.workspaces()
            for layer in (workspace / "scratch").glob("*.layer")
        )

    _wait_for(build, compressing, "the layer's compression")
    status, log = build.stop(signal.SIGTERM)
    _assert_stopped_cleanly(build, status, log, signal.SIGTERM, "[stage 0] STEP 1/1: RUN seq")
    _assert_no_tag(registry, repository)


def test_sigterm_during_push(registry: RegistryServer, base_image: str, tmp_path: Path) -> None:
    repository = "interrupt/push:1"
    with ThrottledRelay(registry.host, rate=2_000_000) as relay:  # 40 MB take ~20 s
        destination = f"{relay.host}/{repository}"
        build = _start(
            tmp_path,
            f"""
            FROM {base_image}
            RUN head -c 40000000 /dev/urandom > /big
            """,
            "-t", destination, "--insecure-registry", registry.host,
            "--insecure-registry", relay.host,
        )  # fmt: skip

        def pushing() -> bool:  # the stage ran, its rootfs is gone: the outputs are written
            workspaces = build.workspaces()
            return (
                "STEP 1/1: RUN" in build.log_text()
                and bool(workspaces)
                and not any(p.name.startswith("rootfs-") for p in workspaces[0].iterdir())
                and relay.relayed > 0
            )

        _wait_for(build, pushing, "the push")
        status, log = build.stop(signal.SIGTERM)
    _assert_stopped_cleanly(build, status, log, signal.SIGTERM, f"pushing to {destination}")
    _assert_no_tag(registry, repository)
