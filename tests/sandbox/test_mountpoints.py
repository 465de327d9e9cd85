"""A run leaves no trace of the sandbox in the rootfs: what a snapshotter sees is the command's."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.errors import SandboxError
from kiln.sandbox import NamespacesRunner, RunSpec
from kiln.sandbox._etc_files import hosts_content

pytestmark = pytest.mark.root

RunSh = Callable[..., tuple[int, str]]
OLD_NS = 1_000_000_000_123_456_789  # a distinctive past timestamp (2001), in nanoseconds


def snapshot(root: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """What a stat-based snapshotter compares (minus ctime, which no one can restore)."""
    result = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            result[rel] = (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns, st.st_ino)
    return result


def age(*paths: Path) -> None:
    for path in paths:
        os.utime(path, ns=(OLD_NS, OLD_NS), follow_symlinks=False)


def test_created_stubs_are_removed_and_parent_times_restored(run_sh: RunSh, rootfs: Path) -> None:
    age(rootfs, rootfs / "etc")
    before = snapshot(rootfs)
    assert not (rootfs / "proc").exists() and not (rootfs / "etc" / "resolv.conf").exists()
    status, out = run_sh("ls -d /proc/self /dev/null /sys/kernel /etc/resolv.conf /etc/hosts")
    assert (status, len(out.split())) == (0, 5)
    assert snapshot(rootfs) == before


def test_etc_is_created_for_the_host_files_and_removed_again(run_sh: RunSh, rootfs: Path) -> None:
    for name in os.listdir(rootfs / "etc"):
        os.unlink(rootfs / "etc" / name)
    os.rmdir(rootfs / "etc")
    age(rootfs)
    before = snapshot(rootfs)
    assert run_sh("test -s /etc/resolv.conf && echo ok") == (0, "ok\n")
    assert snapshot(rootfs) == before
    assert not (rootfs / "etc").exists()


def test_host_files_are_visible_read_only(run_sh: RunSh) -> None:
    host = Path("/etc/resolv.conf").read_text()
    status, out = run_sh(
        "cat /etc/resolv.conf; (echo x >> /etc/resolv.conf) 2>/dev/null || echo ro"
    )
    assert status == 0
    assert out == host + "ro\n"


def test_hostname_resolves_and_hosts_is_readable_by_any_user(run_sh: RunSh) -> None:
    status, out = run_sh("grep -w builder /etc/hosts", uid=65534, gid=65534, hostname="builder")
    assert (status, out) == (0, "127.0.0.1\tbuilder\n::1\tbuilder\n")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1 localhost\n", "127.0.0.1 localhost\n127.0.0.1\tkiln\n::1\tkiln\n"),
        ("127.0.0.1 localhost", "127.0.0.1 localhost\n127.0.0.1\tkiln\n::1\tkiln\n"),
        ("127.0.1.1 box kiln # mine\n", "127.0.1.1 box kiln # mine\n"),
        ("# 1.2.3.4 kiln\n", "# 1.2.3.4 kiln\n127.0.0.1\tkiln\n::1\tkiln\n"),
    ],
)
def test_hosts_content(host: str, expected: str) -> None:
    assert hosts_content(host, "kiln") == expected


def test_existing_image_files_keep_content_mode_and_mtime(run_sh: RunSh, rootfs: Path) -> None:
    hosts = rootfs / "etc" / "hosts"
    hosts.write_text("10.0.0.1 from-the-image\n")
    hosts.chmod(0o600)
    age(hosts, rootfs / "etc", rootfs)
    (rootfs / "proc").mkdir()
    age(rootfs / "proc", rootfs)
    before = snapshot(rootfs)
    status, out = run_sh("cat /etc/hosts")
    assert status == 0
    # The host's (plus the sandbox's hostname), bound over the image's.
    assert out == hosts_content(Path("/etc/hosts").read_text(), "kiln")
    assert snapshot(rootfs) == before
    assert hosts.read_text() == "10.0.0.1 from-the-image\n"
    assert stat.S_IMODE(hosts.stat().st_mode) == 0o600


def test_changes_by_the_command_stay_visible(run_sh: RunSh, rootfs: Path) -> None:
    age(rootfs, rootfs / "etc")
    assert run_sh("touch /new-file; rm /etc/group") == (0, "")
    assert (rootfs / "new-file").exists()
    assert not (rootfs / "etc" / "group").exists()
    # Both directories really changed: their new mtimes must not be rolled back.
    assert os.lstat(rootfs).st_mtime_ns != OLD_NS
    assert os.lstat(rootfs / "etc").st_mtime_ns != OLD_NS
    assert not (rootfs / "proc").exists()
    assert not (rootfs / "etc" / "resolv.conf").exists()


def test_stubs_are_removed_when_set_up_fails(run_sh: RunSh, rootfs: Path) -> None:
    age(rootfs)
    before = snapshot(rootfs)
    with pytest.raises(SandboxError, match="chdir"):
        run_sh("true", cwd="/missing")
    assert snapshot(rootfs) == before


def test_stubs_are_removed_after_a_failing_command(run_sh: RunSh, rootfs: Path) -> None:
    age(rootfs)
    before = snapshot(rootfs)
    assert run_sh("exit 7")[0] == 7
    assert snapshot(rootfs) == before


def test_a_symlinked_mount_point_is_refused(run_sh: RunSh, rootfs: Path, tmp_path: Path) -> None:
    (rootfs / "proc").symlink_to("/etc")
    with pytest.raises(SandboxError, match="not a directory"):
        run_sh("true")
    assert (rootfs / "proc").is_symlink()


def test_a_symlinked_etc_is_never_followed_on_the_host(
    run_sh: RunSh, rootfs: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in os.listdir(rootfs / "etc"):
        os.unlink(rootfs / "etc" / name)
    os.rmdir(rootfs / "etc")
    (rootfs / "etc").symlink_to(outside)
    assert run_sh("echo ran") == (0, "ran\n")
    assert os.listdir(outside) == []


def test_missing_rootfs_is_a_sandbox_error(runner: NamespacesRunner, tmp_path: Path) -> None:
    spec = RunSpec(tmp_path / "nope", ("true",), (), "/", 0, 0, ())
    with pytest.raises(SandboxError, match="not a directory"):
        runner.run(spec)
