from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.errors import UnsafePathError
from kiln.fs import secure_join


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "usr" / "lib").mkdir(parents=True)
    return r


def test_plain_path_joins(root: Path) -> None:
    assert secure_join(root, "etc/passwd") == root / "etc" / "passwd"
    assert secure_join(root, "/etc//./passwd") == root / "etc" / "passwd"
    assert secure_join(root, "") == root


def test_dotdot_is_clamped_at_root(root: Path) -> None:
    assert secure_join(root, "../../../etc/passwd") == root / "etc" / "passwd"
    assert secure_join(root, "usr/../../x") == root / "x"


def test_absolute_symlink_is_rerooted(root: Path) -> None:
    os.symlink("/", root / "evil")
    os.symlink("/usr/lib", root / "lib")
    assert secure_join(root, "evil/etc/passwd") == root / "etc" / "passwd"
    assert secure_join(root, "lib/x.so") == root / "usr" / "lib" / "x.so"
    os.symlink("/etc", root / "usr" / "lib" / "conf")  # nested: restarts at root, not at usr/lib
    assert secure_join(root, "usr/lib/conf/passwd") == root / "etc" / "passwd"


def test_relative_symlink_cannot_climb_out(root: Path) -> None:
    os.symlink("../../../..", root / "usr" / "up")
    assert secure_join(root, "usr/up/etc") == root / "etc"


def test_chained_symlinks(root: Path) -> None:
    os.symlink("b", root / "a")
    os.symlink("/usr/../etc", root / "b")
    assert secure_join(root, "a/shadow") == root / "etc" / "shadow"


def test_follow_final_false_keeps_link(root: Path) -> None:
    os.symlink("/etc", root / "link")
    assert secure_join(root, "link", follow_final=False) == root / "link"
    assert secure_join(root, "link") == root / "etc"


def test_symlink_loop_is_an_error(root: Path) -> None:
    os.symlink("loop2", root / "loop1")
    os.symlink("loop1", root / "loop2")
    with pytest.raises(UnsafePathError, match="too many levels"):
        secure_join(root, "loop1/x")


def test_result_never_outside_root(root: Path) -> None:
    os.symlink("/../..", root / "a")
    os.symlink("../../..", root / "etc" / "b")
    for unsafe in ["a", "a/..", "etc/b/..", "etc/b/a/../..", "../a/../../etc/b"]:
        result = secure_join(root, unsafe)
        assert result == root or root in result.parents, unsafe
