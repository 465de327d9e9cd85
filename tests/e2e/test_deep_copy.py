"""COPY of a directory tree 1,000 levels deep (issue 11.9): it finishes, and GNU tar agrees.

Resolving every path from the rootfs root made such a COPY cost N^3 path steps (depth 200 took
48 s; depth 1,000 did not finish in 10 minutes). No time is asserted; a regression shows as a
test that takes minutes. Both snapshotters, since they read the written paths differently; GNU
tar extracts one of the two (identical) layers (umoci does too, but it resolves every path from
the root and takes minutes at this depth).
"""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.fs import remove_tree
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = [pytest.mark.registry, pytest.mark.root]

DEPTH = 1000


def _chain(context: Path) -> None:
    """``tree/d/d/...`` DEPTH levels deep, a file ``f`` holding its level at every level."""
    fd = os.open(context, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.mkdir("tree", dir_fd=fd)
        for level in range(DEPTH):  # by descriptor: paths this long are slow to build by name
            child = os.open("tree" if level == 0 else "d", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
            with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o640, dir_fd=fd), "w") as out:
                out.write(f"{level}\n")
            if level + 1 < DEPTH:
                os.mkdir("d", 0o750, dir_fd=fd)
    finally:
        os.close(fd)


def _check_chain(root: Path) -> None:
    """Every level is there with its file, its content and its mode, and nothing else."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(DEPTH):
            child = os.open("dst" if level == 0 else "d", os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
            expected = {"f", "d"} if level + 1 < DEPTH else {"f"}
            assert set(os.listdir(fd)) == expected, level
            if level:
                assert os.stat(fd).st_mode & 0o7777 == 0o750, level
            with open(os.open("f", os.O_RDONLY, dir_fd=fd)) as copied:
                assert copied.read() == f"{level}\n", level
            assert os.stat("f", dir_fd=fd).st_mode & 0o777 == 0o640
    finally:
        os.close(fd)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """``tmp_path``, emptied afterwards by kiln (pytest's own clean-up recurses per level)."""
    yield tmp_path
    for child in tmp_path.iterdir():
        remove_tree(child)


def _build(context: Path, out: Path, snapshotter: str) -> Path:
    result = run_kiln(
        "build", "--no-push", "--oci-layout-path", str(out), "--image-format", "oci",
        "--snapshotter", snapshotter,
        "--work-dir", str(out.parent / f"work-{snapshotter}"), str(context), timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((out / "blobs" / "sha256" / digest).read_text())
    (layer,) = manifest["layers"]
    return out / "blobs" / "sha256" / layer["digest"].split(":", 1)[1]


def _entries(layer: Path) -> list[tuple[object, ...]]:
    """The layer's entries as tarfile reads them; directories' mtimes left out (creating their
    entries after setting them moves them to the time of the build)."""
    with tarfile.open(layer) as tar:
        return [
            (m.name, m.type, m.mode, m.uid, m.gid, m.size, m.linkname,
             None if m.isdir() else m.mtime,
             tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
            for m in tar.getmembers()
        ]  # fmt: skip


def test_copy_of_a_tree_a_thousand_levels_deep(registry: RegistryServer, work: Path) -> None:
    context = work / "ctx"
    context.mkdir()
    _chain(context)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY tree /dst/\n")
    overlay = _build(context, work / "overlay", "overlay")
    walk = _build(context, work / "walk", "walk")
    entries = _entries(overlay)
    assert _entries(walk) == entries  # both snapshotters wrote the same layer
    assert len(entries) == 2 * DEPTH
    rootfs = work / "rootfs"
    rootfs.mkdir()
    subprocess.run(
        ["tar", "-x", "-z", "-p", "-f", str(overlay), "-C", str(rootfs)],
        check=True,
        capture_output=True,
    )
    _check_chain(rootfs)
