"""COPY resolves destinations incrementally and through directory descriptors (issue 11.9);
it must still never leave the rootfs, whichever link it meets and however deep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.builder.copy_files import CopyJob
from kiln.builder.effects import CopyEffect
from kiln.context import open_context

pytestmark = pytest.mark.root  # COPY sets owners


def _effect(*sources: str, dest: str) -> CopyEffect:
    return CopyEffect(
        sources=sources, dest=dest, workdir="/", chown=None, chmod=None, from_=None,
        is_add=False, heredocs=(), line=1,
    )  # fmt: skip


def _chain(root: Path, depth: int) -> None:
    level = root
    for i in range(depth):
        level.mkdir(parents=True)
        (level / "f").write_text(f"{i}\n")
        level = level / "d"


def _outside(world: Path, rootfs: Path) -> list[str]:
    """Everything under ``world`` but outside ``rootfs``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(world):
        if Path(dirpath) == rootfs.parent:
            dirnames[:] = [d for d in dirnames if d != rootfs.name]
        found += [os.path.relpath(os.path.join(dirpath, n), world) for n in dirnames + filenames]
    return sorted(found)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(world, rootfs two levels down, context with a 60-deep tree and a file) ."""
    rootfs = tmp_path / "w" / "rootfs"
    rootfs.mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    context = tmp_path / "ctx"
    _chain(context / "tree", 60)
    return tmp_path, rootfs, context


def _copy(rootfs: Path, context: Path, *sources: str, dest: str) -> list[str]:
    return CopyJob(rootfs, _effect(*sources, dest=dest), "Dockerfile").copy_from(
        open_context(str(context))
    )


def test_a_deep_copy_lands_entry_for_entry(world: tuple[Path, Path, Path]) -> None:
    _, rootfs, context = world
    written = _copy(rootfs, context, "tree", dest="/dst/")
    # /dst itself, then the 59 directories below it and a file on each of the 60 levels
    assert written[0] == "dst" and len(written) == len(set(written)) == 1 + 59 + 60
    level = rootfs / "dst"
    for i in range(60):
        assert (level / "f").read_text() == f"{i}\n"
        assert f"{level.relative_to(rootfs)}/f" in written
        level = level / "d"


@pytest.mark.parametrize(
    ("target", "lands"),
    [("/", ""), ("../../..", ""), ("/../../outside", "outside"), ("../../outside", "dst/outside"),
     ("../../../../../../../outside", "outside")],
)  # fmt: skip
def test_a_link_deep_in_the_destination_is_followed_inside_the_rootfs(
    world: tuple[Path, Path, Path], target: str, lands: str
) -> None:
    base, rootfs, context = world
    (rootfs / "dst" / "d" / "d").mkdir(parents=True)
    os.symlink(target, rootfs / "dst" / "d" / "d" / "d")  # where the tree's 4th level goes
    before = _outside(base, rootfs)
    _copy(rootfs, context, "tree", dest="/dst/")
    assert _outside(base, rootfs) == before
    landed = rootfs / lands
    assert (landed / "f").read_text() == "3\n"  # the 4th level's file, re-rooted
    assert (landed / "d" / "d" / "f").read_text() == "5\n"
    assert os.readlink(rootfs / "dst" / "d" / "d" / "d") == target  # the link itself stays


def test_a_link_the_same_copy_made_is_replaced_not_written_through(
    world: tuple[Path, Path, Path],
) -> None:
    """One source makes ``x`` a link out of the root; a later source's directory ``x`` replaces
    the link's target only inside the rootfs."""
    base, rootfs, context = world
    (context / "one").mkdir()
    os.symlink("../../../outside", context / "one" / "x")
    _chain(context / "two" / "x", 3)
    before = _outside(base, rootfs)
    _copy(rootfs, context, "one", "two", dest="/dst/")
    assert _outside(base, rootfs) == before
    assert os.readlink(rootfs / "dst" / "x") == "../../../outside"
    assert (rootfs / "outside" / "d" / "d" / "f").read_text() == "2\n"
