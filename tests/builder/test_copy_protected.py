"""COPY/ADD never write a protected path (inplace), checked before writing, through symlinks;
hostile ADD archives end in a located error, not a traceback."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from kiln.builder.copy_files import CopyJob
from kiln.builder.effects import CopyEffect
from kiln.context import LocalContext
from kiln.errors import DockerfileError
from kiln.fs import ProtectedPaths


def _effect(sources: tuple[str, ...], dest: str, *, is_add: bool = False) -> CopyEffect:
    return CopyEffect(
        sources=sources, dest=dest, workdir="/", chown=None, chmod=None, from_=None,
        is_add=is_add, heredocs=(), line=7,
    )  # fmt: skip


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, LocalContext, ProtectedPaths]:
    """A root with kiln's dir and links planted by a base image, and a small context."""
    root = tmp_path / "root"
    (root / "kiln" / "bin").mkdir(parents=True)
    (root / "kiln" / "bin" / "kiln").write_text("kiln's code")
    (root / "x").symlink_to("/kiln")
    (root / "f").symlink_to("/kiln/bin/kiln")
    (root / "chain").symlink_to("x/bin")
    context = tmp_path / "ctx"
    (context / "dir").mkdir(parents=True)
    (context / "kiln").write_text("pwned")
    (context / "dir" / "kiln").write_text("pwned")
    return root, LocalContext(context), ProtectedPaths.under(str(root), ["kiln"])


@pytest.mark.parametrize(
    ("sources", "dest", "reached"),
    [
        (("kiln",), "/kiln/bin/kiln", "kiln"),
        (("kiln",), "/x/bin/kiln", "kiln"),
        (("kiln",), "/chain/", "kiln/bin"),
        (("kiln",), "/f", ""),  # the link itself is replaced: allowed
        (("dir",), "/x/bin/", "kiln"),
        (("dir",), "/x/new/deeper/", "kiln"),
    ],
)
def test_copy_into_protected_paths_is_refused_before_writing(
    world: tuple[Path, LocalContext, ProtectedPaths], sources: tuple[str, ...], dest: str,
    reached: str,
) -> None:  # fmt: skip
    root, context, protected = world
    job = CopyJob(root, _effect(sources, dest), "Dockerfile", protected=protected)
    if not reached:  # the link itself is not protected: COPY replaces it, kiln stays intact
        job.copy_from(context)
        assert (root / "f").read_text() == "pwned" and not (root / "f").is_symlink()
    else:
        with pytest.raises(DockerfileError, match=f"Dockerfile:7: .* resolves to /{reached}, "):
            job.copy_from(context)
    assert (root / "kiln" / "bin" / "kiln").read_text() == "kiln's code"
    assert sorted(p.name for p in (root / "kiln").iterdir()) == ["bin"]
    assert sorted(p.name for p in (root / "kiln" / "bin").iterdir()) == ["kiln"]


def _archive(path: Path, *members: tuple[str, bytes, str]) -> Path:
    """A tar of (name, type, linkname) members, each regular file holding b'archive'."""
    with tarfile.open(path, "w") as tar:
        for name, kind, linkname in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = linkname
            data = b"archive" if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize(
    ("members", "message"),
    [
        (
            [("l", tarfile.SYMTYPE, "/missing/dir"), ("l/file", tarfile.REGTYPE, "")],
            "ADD cannot unpack 'l/file' from evil.tar: No such file or directory: /missing/dir",
        ),
        (
            [("h", tarfile.LNKTYPE, "nowhere")],
            "ADD cannot unpack hard link 'h': it points at 'nowhere', which is missing",
        ),
        (
            [("d", tarfile.DIRTYPE, ""), ("h", tarfile.LNKTYPE, "d")],
            "ADD cannot unpack hard link 'h': it points at 'd', which is a directory",
        ),
        (
            [("h", tarfile.LNKTYPE, "../../kiln/bin/kiln")],
            "ADD hard link 'h' resolves to /kiln/bin/kiln, which is protected",
        ),
        (
            [("l", tarfile.SYMTYPE, "/kiln"), ("l/file", tarfile.REGTYPE, "")],
            "COPY/ADD destination /app/l resolves to /kiln, which is protected",
        ),
    ],
    ids=["under-missing-symlink", "hardlink-missing", "hardlink-dir", "hardlink-out", "link-out"],
)
def test_hostile_add_archives_give_located_errors(
    world: tuple[Path, LocalContext, ProtectedPaths],
    tmp_path: Path,
    members: list[tuple[str, bytes, str]],
    message: str,
) -> None:
    root, _, protected = world
    (root / "app").mkdir()
    context = tmp_path / "addctx"
    context.mkdir()
    _archive(context / "evil.tar", *members)
    effect = _effect(("evil.tar",), "/app/", is_add=True)
    job = CopyJob(root, effect, "Dockerfile", protected=protected)
    with pytest.raises(DockerfileError, match=f"^Dockerfile:7: {message}"):
        job.copy_from(LocalContext(context))
    assert (root / "kiln" / "bin" / "kiln").read_text() == "kiln's code"
    assert not os.path.lexists(root / "missing")


def test_copy_through_a_link_to_a_missing_directory_creates_it(tmp_path: Path) -> None:
    """BuildKit resolves the destination in the root and creates what is missing (MkdirAll)."""
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to("/missing/dir")
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "f").write_text("copied")
    written = CopyJob(root, _effect(("f",), "/link/sub/"), "Dockerfile").copy_from(
        LocalContext(context)
    )
    assert (root / "missing" / "dir" / "sub" / "f").read_text() == "copied"
    assert written == ["missing", "missing/dir", "missing/dir/sub", "missing/dir/sub/f"]
