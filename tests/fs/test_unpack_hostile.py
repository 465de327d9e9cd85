"""Hostile layer tars must never write, link or delete outside the rootfs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.errors import LayerError, UnsafePathError
from kiln.fs import apply_layer

from .tarbuild import entry, hard, make_tar, sym

SENTINEL = b"outside, do not touch\n"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A rootfs two levels below tmp_path, and a sentinel file outside it."""
    rootfs = tmp_path / "a" / "rootfs"
    rootfs.mkdir(parents=True)
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(SENTINEL)
    return rootfs, sentinel


def assert_untouched(sentinel: Path) -> None:
    assert sentinel.read_bytes() == SENTINEL
    assert sentinel.stat().st_nlink == 1
    assert sorted(p.name for p in sentinel.parent.iterdir()) == ["a", "sentinel"]


def test_dotdot_entry_is_rejected(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(entry("../../sentinel", data=b"pwned"))
    with pytest.raises(UnsafePathError, match="climbs out"):
        apply_layer(tar, rootfs)
    assert_untouched(sentinel)


def test_dotdot_inside_is_allowed(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    apply_layer(make_tar(entry("a/b/../c", data=b"ok")), rootfs)
    assert (rootfs / "a" / "c").read_bytes() == b"ok"
    assert_untouched(sentinel)


def test_absolute_name_is_made_relative(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    apply_layer(make_tar(entry(str(sentinel), data=b"pwned")), rootfs)
    assert (rootfs / str(sentinel).lstrip("/")).read_bytes() == b"pwned"
    assert_untouched(sentinel)


@pytest.mark.parametrize("target", ["/", "../../..", "/../../.."])
def test_write_through_symlink_is_rerooted(world: tuple[Path, Path], target: str) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("evil", target), entry("evil/sentinel", data=b"pwned"))
    apply_layer(tar, rootfs)
    assert (rootfs / "sentinel").read_bytes() == b"pwned"
    assert_untouched(sentinel)


def test_nested_absolute_symlink_restarts_at_rootfs(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("a/b/evil", "/"), entry("a/b/evil/x", data=b"pwned"))
    apply_layer(tar, rootfs)
    assert (rootfs / "x").read_bytes() == b"pwned"
    assert not (rootfs / "a" / "b" / "x").exists()
    assert_untouched(sentinel)


def test_symlink_to_outside_dir_then_nested_write(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("evil", str(sentinel.parent)), entry("evil/sentinel", data=b"pwned"))
    apply_layer(tar, rootfs)
    # the absolute target is re-rooted: rootfs/<tmp_path>/sentinel
    assert (rootfs / str(sentinel).lstrip("/")).read_bytes() == b"pwned"
    assert_untouched(sentinel)


def test_file_replaces_symlink_instead_of_writing_through(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    os.symlink(str(sentinel), rootfs / "x")  # planted by a lower layer
    apply_layer(make_tar(entry("x", data=b"pwned")), rootfs)
    assert not (rootfs / "x").is_symlink()
    assert (rootfs / "x").read_bytes() == b"pwned"
    assert_untouched(sentinel)


def test_hardlink_outside_is_rejected(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    with pytest.raises(UnsafePathError):
        apply_layer(make_tar(hard("passwd", "../../sentinel")), rootfs)
    assert_untouched(sentinel)


def test_hardlink_through_symlink_stays_inside(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    (rootfs / "sentinel").write_bytes(b"inside")
    tar = make_tar(sym("evil", "../../.."), hard("link", "evil/sentinel"))
    apply_layer(tar, rootfs)
    assert (rootfs / "link").samefile(rootfs / "sentinel")
    assert_untouched(sentinel)


def test_hardlink_to_missing_target_is_an_error(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("evil", "/"), hard("link", f"evil/{sentinel}"))
    with pytest.raises(LayerError, match="missing"):
        apply_layer(tar, rootfs)
    assert_untouched(sentinel)


def test_hardlink_to_symlink_links_the_symlink_itself(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("s", str(sentinel)), hard("h", "s"))
    apply_layer(tar, rootfs)
    assert (rootfs / "h").is_symlink()
    assert os.lstat(rootfs / "h").st_ino == os.lstat(rootfs / "s").st_ino
    assert_untouched(sentinel)


def test_whiteout_through_symlink_stays_inside(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    (rootfs / "sentinel").write_bytes(b"inside")
    apply_layer(make_tar(sym("evil", "../../.."), entry("evil/.wh.sentinel")), rootfs)
    assert not (rootfs / "sentinel").exists()
    assert_untouched(sentinel)


@pytest.mark.parametrize("name", [".wh..", ".wh...", "../.wh.sentinel", "a/.wh."])
def test_bad_whiteouts_are_rejected(world: tuple[Path, Path], name: str) -> None:
    rootfs, sentinel = world
    with pytest.raises(UnsafePathError):
        apply_layer(make_tar(entry(name)), rootfs)
    assert_untouched(sentinel)


def test_opaque_through_symlink_only_clears_inside(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    (rootfs / "lower").write_bytes(b"from a lower layer")
    tar = make_tar(sym("evil", "../.."), entry("evil/.wh..wh..opq"))
    apply_layer(tar, rootfs)  # a naive join would empty tmp_path, sentinel included
    assert not (rootfs / "lower").exists()
    assert (rootfs / "evil").is_symlink()
    assert_untouched(sentinel)


def test_root_replaced_by_file_is_rejected(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    with pytest.raises(UnsafePathError):
        apply_layer(make_tar(entry("./", data=b"x")), rootfs)
    assert rootfs.is_dir()
    assert_untouched(sentinel)
