"""The sandbox's life is bounded by kiln's: killing the helper kills the run; failures explain."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.errors import SandboxError
from kiln.sandbox import NamespacesRunner, RunSpec
from tests.sandbox.support import host_processes_matching, make_busybox_rootfs

pytestmark = pytest.mark.root


class _Signal:
    """A sink that tells the test when the command has printed something."""

    def __init__(self) -> None:
        self.seen = threading.Event()
        self.data = b""

    def write(self, data: bytes, /) -> int:
        self.data += data
        self.seen.set()
        return len(data)

    def flush(self) -> None:
        pass


def _wait_until(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _children(pid: int) -> list[int]:
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _parent(int(entry)) == pid
    ]


def _fork_servers(parent: int | None = None) -> list[int]:
    """The sandbox fork servers started by ``parent`` (default: this test process)."""
    wanted = os.getpid() if parent is None else parent
    return [
        pid for pid in host_processes_matching("kiln.sandbox._forkserver") if _parent(pid) == wanted
    ]


def _step_helper(command: int) -> int:
    """The process our fork server forked for the step running ``command``.

    Not simply the server's child: the server also keeps a spare init forked ahead.
    """
    servers = set(_fork_servers())
    pid = command
    while (parent := _parent(pid)) is not None and parent not in servers:
        pid = parent
    assert parent in servers, "the command does not descend from our fork server"
    return pid


def test_killing_the_helper_kills_the_whole_sandbox(runner: NamespacesRunner, rootfs: Path) -> None:
    sink = _Signal()
    # A duration unique to this run, so processes of another test run never match.
    marker = str(random.randint(100_000, 999_999))
    argv = ("sh", "-c", f"echo ready; sleep {marker}")
    spec = RunSpec(rootfs, argv, ("PATH=/bin",), "/", 0, 0, (), stdout=sink)
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(runner.run(spec)))
    thread.start()
    assert sink.seen.wait(10)
    _wait_until(lambda: bool(host_processes_matching("sleep\x00" + marker)))
    (command,) = host_processes_matching("sleep\x00" + marker)
    os.kill(_step_helper(command), signal.SIGKILL)
    thread.join(10)
    assert not thread.is_alive()
    assert result == [128 + signal.SIGKILL]
    _wait_until(lambda: host_processes_matching("sleep\x00" + marker) == [])


def test_runs_in_parallel_on_separate_rootfs(runner: NamespacesRunner, tmp_path: Path) -> None:
    roots = [make_busybox_rootfs(tmp_path / f"r{i}") for i in range(3)]
    results: dict[int, int] = {}

    def run(i: int) -> None:
        argv = ("sh", "-c", f"sleep 0.3; echo {i} > /who")
        results[i] = runner.run(RunSpec(roots[i], argv, ("PATH=/bin",), "/", 0, 0, ()))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert results == {0: 0, 1: 0, 2: 0}
    assert [(r / "who").read_text() for r in roots] == ["0\n", "1\n", "2\n"]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_without_cap_sys_admin_it_explains_and_cleans_up(
    runner: NamespacesRunner, rootfs: Path
) -> None:
    script = textwrap.dedent(
        f"""
        from kiln.errors import SandboxError
        from kiln.sandbox import NamespacesRunner, RunSpec
        print(NamespacesRunner.available())
        try:
            NamespacesRunner().run(RunSpec({str(rootfs)!r}, ("true",), (), "/", 0, 0, ()))
        except SandboxError as exc:
            print(exc)
        """
    )
    before = sorted(os.listdir(rootfs))
    out = subprocess.run(
        ["setpriv", "--bounding-set", "-sys_admin", sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines() == [
        "namespaces backend needs CAP_SYS_ADMIN",
        "create mount, pid, uts, ipc namespaces: Operation not permitted",
        "hint: the namespaces and chroot isolations need root with CAP_SYS_ADMIN; "
        "isolation='auto' picks what this environment allows (inplace in a container without "
        "CAP_SYS_ADMIN, a rootless build for a non-root user)",
    ]
    assert sorted(os.listdir(rootfs)) == before


def test_killing_the_fork_server_kills_the_step_and_the_next_run_starts_a_new_one(
    runner: NamespacesRunner, rootfs: Path
) -> None:
    sink = _Signal()
    marker = str(random.randint(100_000, 999_999))
    argv = ("sh", "-c", f"echo ready; sleep {marker}")
    spec = RunSpec(rootfs, argv, ("PATH=/bin",), "/", 0, 0, (), stdout=sink)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(spec)
        except SandboxError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert sink.seen.wait(10)
    (server,) = _fork_servers()
    os.kill(server, signal.SIGKILL)
    thread.join(10)
    assert not thread.is_alive()
    assert "fork server exited during the step" in str(errors[0])
    _wait_until(lambda: host_processes_matching("sleep\x00" + marker) == [])
    assert runner.run(RunSpec(rootfs, ("true",), ("PATH=/bin",), "/", 0, 0, ())) == 0
    assert _fork_servers() not in ([], [server])


def test_a_spare_init_killed_while_waiting_is_replaced(
    runner: NamespacesRunner, rootfs: Path
) -> None:
    spec = RunSpec(rootfs, ("true",), ("PATH=/bin",), "/", 0, 0, ())
    assert runner.run(spec) == 0
    (server,) = _fork_servers()
    _wait_until(lambda: bool(_children(server)))  # the next step's init, forked ahead
    for spare in _children(server):
        os.kill(spare, signal.SIGKILL)
    for _ in range(3):
        assert runner.run(spec) == 0
    assert _fork_servers() == [server]


def test_steps_are_forked_by_one_server(runner: NamespacesRunner, rootfs: Path) -> None:
    spec = RunSpec(rootfs, ("true",), ("PATH=/bin",), "/", 0, 0, ())
    assert runner.run(spec) == 0
    servers = _fork_servers()
    for _ in range(3):
        assert runner.run(spec) == 0
    assert len(servers) == 1
    assert _fork_servers() == servers


def test_killing_kiln_kills_the_sandbox_and_the_fork_server(rootfs: Path) -> None:
    marker = str(random.randint(100_000, 999_999))
    script = textwrap.dedent(
        f"""
        from kiln.sandbox import NamespacesRunner, RunSpec
        argv = ("sh", "-c", "sleep {marker}")
        NamespacesRunner().run(RunSpec({str(rootfs)!r}, argv, ("PATH=/bin",), "/", 0, 0, ()))
        """
    )
    kiln = subprocess.Popen([sys.executable, "-c", script])
    try:
        _wait_until(lambda: bool(host_processes_matching("sleep\x00" + marker)), timeout=20)
        (server,) = _fork_servers(kiln.pid)
    finally:
        kiln.kill()
        kiln.wait()
    _wait_until(lambda: host_processes_matching("sleep\x00" + marker) == [])
    _wait_until(lambda: not _alive(server))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_no_fds_leak_across_runs(runner: NamespacesRunner, rootfs: Path) -> None:
    spec = RunSpec(rootfs, ("true",), ("PATH=/bin",), "/", 0, 0, (), stdout=_Signal())
    runner.run(spec)
    before = sorted(os.listdir("/proc/self/fd"))
    for _ in range(5):
        assert runner.run(spec) == 0
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_available_here(runner: NamespacesRunner) -> None:
    assert NamespacesRunner.available() is None
