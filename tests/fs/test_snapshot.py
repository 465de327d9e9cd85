"""WalkSnapshotter: stat-based detection of what a step changed."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from kiln.fs import Changes, Snapshotter, WalkSnapshotter


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for d in ("etc", "usr/bin", "var/lib/app", "proc/1", "tmp"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "etc" / "motd").write_text("hi\n")
    (root / "usr" / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "var" / "lib" / "app" / "db").write_text("data")
    (root / "proc" / "1" / "status").write_text("running")
    os.symlink("tool", root / "usr" / "bin" / "alias")
    return root


def snap(rootfs: Path) -> WalkSnapshotter:
    s = WalkSnapshotter(rootfs, exclude=["proc", "/dev/"])
    s.baseline()
    return s


def test_is_a_snapshotter(rootfs: Path) -> None:
    s: Snapshotter = WalkSnapshotter(rootfs)
    s.baseline()
    assert s.changes() == Changes()
    assert not s.changes()


def test_added_file_and_its_directory(rootfs: Path) -> None:
    s = snap(rootfs)
    (rootfs / "etc" / "new.conf").write_text("x")
    assert s.changes() == Changes(changed=("etc", "etc/new.conf"))


def test_modified_content_same_size(rootfs: Path) -> None:
    s = snap(rootfs)
    path = rootfs / "etc" / "motd"
    before = os.stat(path)
    path.write_text("ho\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # hide mtime; ctime moves
    assert s.changes().changed == ("etc/motd",)


def test_chmod_and_chown(rootfs: Path) -> None:
    s = snap(rootfs)
    os.chmod(rootfs / "usr" / "bin" / "tool", 0o755)
    if os.geteuid() == 0:
        os.lchown(rootfs / "etc" / "hosts", 1000, 1000)
        expected: tuple[str, ...] = ("etc/hosts", "usr/bin/tool")
    else:
        expected = ("usr/bin/tool",)
    assert s.changes().changed == expected


def test_symlink_retarget(rootfs: Path) -> None:
    s = snap(rootfs)
    link = rootfs / "usr" / "bin" / "alias"
    os.unlink(link)
    os.symlink("other", link)
    assert "usr/bin/alias" in s.changes().changed


def test_deleted_file(rootfs: Path) -> None:
    s = snap(rootfs)
    (rootfs / "etc" / "motd").unlink()
    changes = s.changes()
    assert changes.deleted == ("etc/motd",)
    assert changes.changed == ("etc",)


def test_deleted_dir_collapses(rootfs: Path) -> None:
    s = snap(rootfs)
    shutil.rmtree(rootfs / "var" / "lib")
    assert s.changes().deleted == ("var/lib",)


def test_dir_replaced_by_file_hides_old_children(rootfs: Path) -> None:
    s = snap(rootfs)
    shutil.rmtree(rootfs / "var" / "lib")
    (rootfs / "var" / "lib").write_text("now a file")
    changes = s.changes()
    assert changes.deleted == ()
    assert changes.changed == ("var", "var/lib")


def test_excluded_paths_are_not_reported(rootfs: Path) -> None:
    s = snap(rootfs)
    (rootfs / "proc" / "1" / "status").write_text("stopped")
    (rootfs / "proc" / "2").mkdir()
    shutil.rmtree(rootfs / "proc" / "1")
    assert s.changes() == Changes()


def test_changes_keeps_baseline_until_rebaselined(rootfs: Path) -> None:
    s = snap(rootfs)
    (rootfs / "tmp" / "x").write_text("x")
    assert s.changes().changed == ("tmp", "tmp/x")
    assert s.changes().changed == ("tmp", "tmp/x")
    s.baseline()
    assert s.changes() == Changes()


def test_does_not_follow_symlinked_dirs(rootfs: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    s = snap(rootfs)
    os.symlink(str(outside), rootfs / "out")
    (outside / "file").write_text("x")
    assert s.changes().changed == ("out",)
