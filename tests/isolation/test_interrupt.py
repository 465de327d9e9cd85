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

from tests.isolation.test_rootless import shared_dir
from tests.sandbox.support import host_processes_matching
from tests.support.registry_server import RegistryServer
from tests.support.relay import Relay
from tests.support.rootless import SYSTEM_PYTHON, RootlessUser, rootless_user

pytestmark = pytest.mark.root

__all__ = ["shared_dir"]  # the rootless tests' world-readable copy of kiln, as a fixture


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

    def kiln_pid(self) -> int:
        """The (outer) kiln process: ours, or the child `runuser` started."""
        for pid in [self.process.pid, *_children(self.process.pid)]:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\x00")
            if b"kiln.cli.main" in argv and b"runuser" not in argv[0]:
                return pid
        pytest.fail("no kiln process found")

    def stop(self, signum: int) -> tuple[int, str]:
        """Send ``signum`` to kiln; wait for it to exit (a step of ~28 hours never would)."""
        os.kill(self.kiln_pid(), signum)
        try:
            status = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"kiln did not stop on signal {signum}:\n{self.log_text()}")
        return status, self.log_text()


def _start(base: Path, dockerfile: str, *flags: str, user: RootlessUser | None = None) -> Build:
    """Start `kiln build` in the background; as ``user`` with the world-readable kiln of
    ``shared_dir`` (then ``base`` must be under it)."""
    context = base / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    work, tmp = base / "work", base / "tmp"
    work.mkdir()
    tmp.mkdir()
    log = base / "kiln.log"
    kiln = [sys.executable, "-m", "kiln.cli.main"]
    if user is not None:
        for path in (work, tmp):
            os.chown(path, user.uid, user.gid)
        kiln = user.command(
            f"PYTHONPATH={base.parent / 'py'}", f"TMPDIR={tmp}", str(SYSTEM_PYTHON), "-m",
            "kiln.cli.main",
        )  # fmt: skip
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [*kiln, "build", *flags, "--work-dir", str(work), str(context)],
            stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "TMPDIR": str(tmp)},
        )  # fmt: skip
    return Build(process, log, work, tmp)


def _children(parent: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as stat:
                    if int(stat.read().rsplit(b")", 1)[1].split()[1]) == parent:
                        found.append(int(entry))
            except OSError:
                continue
    return found


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
    with Relay(registry.host, upload_rate=2_000_000) as relay:  # 40 MB take ~20 s
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

        seen_rootfs = False  # the stage's files are made lazily, at the RUN: wait for them first

        def pushing() -> bool:  # the stage ran, its rootfs is gone: the outputs are written
            nonlocal seen_rootfs
            workspaces = build.workspaces()
            rootfs = bool(workspaces) and any(
                p.name.startswith("rootfs-") for p in workspaces[0].iterdir()
            )
            seen_rootfs = seen_rootfs or rootfs
            return (
                "STEP 1/1: RUN" in build.log_text()
                and seen_rootfs
                and not rootfs
                and relay.uploaded > 0
            )

        _wait_for(build, pushing, "the push")
        status, log = build.stop(signal.SIGTERM)
    _assert_stopped_cleanly(build, status, log, signal.SIGTERM, f"pushing to {destination}")
    _assert_no_tag(registry, repository)


def test_sigterm_to_rootless_kiln_reaches_the_build_in_its_user_namespace(
    shared_dir: Path, registry: RegistryServer, base_image: str
) -> None:
    """The outer kiln forwards the signal to the kiln it re-executed in the user namespace."""
    marker = str(random.randint(100_000, 999_999))
    repository = "interrupt/rootless:1"
    base = shared_dir / "interrupt"
    base.mkdir()
    with rootless_user(subordinate_ids=True) as user:
        build = _start(
            base,
            f"""
            FROM {base_image}
            RUN (sleep {marker} &) && sleep {marker}
            """,
            "-t", f"{registry.host}/{repository}", "--insecure-registry", registry.host,
            user=user,
        )  # fmt: skip
        sleeping = "sleep\x00" + marker
        _wait_for(build, lambda: len(host_processes_matching(sleeping)) == 2, "the RUN step")
        status, log = build.stop(signal.SIGTERM)
    assert "Isolation: namespaces (rootless" in log
    _assert_stopped_cleanly(build, status, log, signal.SIGTERM, "[stage 0] STEP 1/1: RUN (sleep")
    assert host_processes_matching(sleeping) == []
    _assert_no_tag(registry, repository)
