"""The chroot backend, for real: chroot(2), real ids, real background processes, real files."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from kiln.sandbox import ChrootRunner, InplaceRunner, RunSpec
from tests.sandbox.support import host_processes_matching, make_busybox_rootfs, run_script

pytestmark = pytest.mark.root


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return make_busybox_rootfs(tmp_path / "rootfs")


def run(rootfs: Path, script: str, **overrides: object) -> tuple[int, str]:
    assert ChrootRunner.available() is None
    return run_script(ChrootRunner(), rootfs, script, ("PATH=/bin", "FOO=bar"), **overrides)


def test_runs_in_the_rootfs_as_the_user_with_its_env_cwd_and_status(rootfs: Path) -> None:
    script = "id; pwd; echo $FOO; echo made > /made; exit 3"
    status, out = run(rootfs, script, uid=1000, gid=1000, groups=(100,), cwd="/tmp")
    assert status == 3
    assert out.splitlines() == [
        "uid=1000(app) gid=1000(app) groups=100(users)",
        "/tmp",
        "bar",
        "/bin/sh: can't create /made: Permission denied",
    ]
    assert run(rootfs, "echo made > /made")[0] == 0
    assert (rootfs / "made").read_text() == "made\n"
    assert not Path("/made").exists()


def test_background_processes_and_daemons_end_with_the_step(rootfs: Path) -> None:
    started = time.monotonic()
    status, out = run(rootfs, "(sleep 4129; echo late) & setsid sleep 4130 & echo started")
    assert (status, out) == (0, "started\n")
    assert time.monotonic() - started < 10
    assert host_processes_matching("sleep\x004129") == []
    assert host_processes_matching("sleep\x004130") == []


def test_dev_and_etc_files_are_provided_and_put_back(rootfs: Path) -> None:
    hosts = rootfs / "etc" / "hosts"
    hosts.write_text("image's own\n")
    hosts.chmod(0o600)
    os.utime(hosts, ns=(1_000_000_000, 2_000_000_000))
    etc_mtime = os.lstat(rootfs / "etc").st_mtime_ns
    before = os.lstat(hosts)
    status, out = run(
        rootfs, "echo x > /dev/null && head -c 3 /dev/zero | wc -c; cat /etc/hosts /etc/resolv.conf"
    )
    assert status == 0, out
    assert out.startswith("3\n")
    assert "localhost" in out
    assert Path("/etc/resolv.conf").read_text() in out
    after = os.lstat(hosts)
    assert hosts.read_text() == "image's own\n"
    assert (after.st_ino, after.st_mode, after.st_mtime_ns) == (
        before.st_ino,
        before.st_mode,
        before.st_mtime_ns,
    )
    assert not (rootfs / "etc" / "resolv.conf").exists()
    assert not (rootfs / "dev").exists()
    assert os.lstat(rootfs / "etc").st_mtime_ns == etc_mtime


def test_a_symlinked_etc_file_is_never_followed(rootfs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("host file\n")
    (rootfs / "etc" / "resolv.conf").symlink_to(outside)
    status, _ = run(rootfs, "true")
    assert status == 0
    assert outside.read_text() == "host file\n"


def test_inplace_runner_runs_in_slash_as_the_user_and_ends_background_work() -> None:
    output = io.BytesIO()
    spec = RunSpec(
        rootfs=Path("/"),
        argv=("/bin/sh", "-c", "id -u; id -g; pwd; sleep 4132 & echo done"),
        env=("PATH=/usr/bin:/bin",),
        cwd="/tmp",
        uid=65534,
        gid=65534,
        groups=(),
        stdout=output,
        stderr=output,
    )
    assert InplaceRunner().run(spec) == 0
    assert output.getvalue().decode().split() == ["65534", "65534", "/tmp", "done"]
    assert host_processes_matching("sleep\x004132") == []
