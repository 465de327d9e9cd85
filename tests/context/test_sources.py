"""Opening build contexts: directories, tarballs, refused schemes, ignore-file lookup."""

from __future__ import annotations

import io
import re
import tarfile
import tempfile
from pathlib import Path
from typing import Literal

import pytest

from kiln.context import LocalContext, WrappedContext, find_ignore_file, open_context
from kiln.errors import ContextError
from tests.context.conftest import make_tree

WriteMode = Literal["w", "w:gz", "w:xz"]

# ---- which ignore file applies -------------------------------------------------------------

# (files present, Dockerfile path or None, expected ignore file or None)
PRECEDENCE: list[tuple[list[str], str | None, str | None]] = [
    ([".dockerignore"], "Dockerfile", ".dockerignore"),
    ([".dockerignore", "Dockerfile.dockerignore"], "Dockerfile", "Dockerfile.dockerignore"),
    (["Dockerfile.dockerignore"], "Dockerfile", "Dockerfile.dockerignore"),
    (
        [".dockerignore", "sub/app.Dockerfile.dockerignore"],
        "sub/app.Dockerfile",
        "sub/app.Dockerfile.dockerignore",
    ),
    ([".dockerignore", "Dockerfile.dockerignore"], "sub/app.Dockerfile", ".dockerignore"),
    ([".dockerignore", "Dockerfile.dockerignore"], None, ".dockerignore"),
    (["sub/.dockerignore"], "sub/Dockerfile", None),  # only the context root's counts
    ([], "Dockerfile", None),
]


@pytest.mark.parametrize(("present", "dockerfile", "expected"), PRECEDENCE)
def test_find_ignore_file(
    tmp_path: Path, present: list[str], dockerfile: str | None, expected: str | None
) -> None:
    make_tree(tmp_path, dict.fromkeys(present, "x\n"))
    found = find_ignore_file(tmp_path, tmp_path / dockerfile if dockerfile else None)
    assert found == (tmp_path / expected if expected else None)


def test_open_context_uses_the_dockerfile_specific_ignore_file(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {".dockerignore": "a\n", "app.Dockerfile": "", "app.Dockerfile.dockerignore": "b\n"},
    )
    with open_context(str(tmp_path), dockerfile=Path("app.Dockerfile"), workdir=tmp_path) as ctx:
        assert ctx.ignore.matches("b") and not ctx.ignore.matches("a")
        assert isinstance(ctx, LocalContext)
        assert ctx.ignore_file == tmp_path / "app.Dockerfile.dockerignore"
    with open_context(str(tmp_path)) as ctx:
        assert ctx.ignore.matches("a") and not ctx.ignore.matches("b")


# ---- directories ---------------------------------------------------------------------------


@pytest.mark.parametrize("spec", ["ctx", "dir://ctx", "DIR://ctx", "./ctx/", "ctx/../ctx"])
def test_directory_specs_are_relative_to_workdir(tmp_path: Path, spec: str) -> None:
    make_tree(tmp_path / "ctx", {"Dockerfile": "", ".dockerignore": "*.tmp\n"})
    context = open_context(spec, workdir=tmp_path)
    assert isinstance(context, LocalContext)
    assert context.root == (tmp_path / "ctx").resolve()
    assert context.ignore.matches("x.tmp")
    assert context.dockerfile == context.root / "Dockerfile"
    context.close()
    assert context.root.is_dir()  # never deletes the user's files


def test_absolute_directory_and_symlinked_root(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to("real")
    context = open_context(f"dir://{tmp_path / 'alias'}")
    assert context.root == (tmp_path / "real").resolve()  # root is symlink-free


def test_no_ignore_file_means_nothing_is_ignored(tmp_path: Path) -> None:
    context = open_context(str(tmp_path))
    assert not context.ignore.matches("anything")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ContextError, match=r"build context .*nope does not exist"):
        open_context("nope", workdir=tmp_path)


def test_file_is_not_a_directory_context(tmp_path: Path) -> None:
    (tmp_path / "ctx.tar").write_bytes(b"")
    with pytest.raises(ContextError, match="is not a directory") as info:
        open_context(str(tmp_path / "ctx.tar"))
    assert "tar://" in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        "ftp://example.com/ctx.tar.gz",
        "docker-image://busybox",
        "oci-layout://dir",
    ],
)
def test_unknown_schemes_are_refused_by_name(spec: str) -> None:
    scheme = spec.split("://")[0]
    with pytest.raises(ContextError, match=re.escape(f"scheme {scheme}:// is not supported")):
        open_context(spec)


# ---- tarballs ------------------------------------------------------------------------------


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    info.mtime = 1_000_000
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], mode: WriteMode) -> Path:
    with tarfile.open(path, mode=mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Route temporary directories somewhere we can check for leftovers."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:xz"])
def test_tar_context_extracts_and_cleans_up(
    tmp_path: Path, private_tmp: Path, mode: WriteMode
) -> None:
    archive = _tar(
        tmp_path / "ctx.tar",
        [
            _member("./Dockerfile", data=b"FROM scratch\n"),
            _member(".dockerignore", data=b"*.log\n"),
            _member("bin", tarfile.DIRTYPE, mode=0o555),
            _member("bin/tool", data=b"#!/bin/sh\n", mode=0o755),
            _member("bin/alias", tarfile.SYMTYPE, linkname="tool"),
            _member("bin/hard", tarfile.LNKTYPE, linkname="bin/tool"),
            _member("dev/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
            _member("x.log", data=b"noise"),
        ],
        mode,
    )
    context = open_context(f"tar://{archive.name}", workdir=tmp_path)
    assert isinstance(context, WrappedContext)
    root = context.root
    assert root.parent.parent == private_tmp.resolve()
    assert (root / "Dockerfile").read_text() == "FROM scratch\n"
    assert (root / "bin" / "tool").stat().st_mode & 0o777 == 0o755
    assert (root / "bin").stat().st_mode & 0o777 == 0o555
    assert (root / "bin" / "alias").readlink() == Path("tool")
    assert (root / "bin" / "hard").stat().st_ino == (root / "bin" / "tool").stat().st_ino
    assert (root / "bin" / "tool").stat().st_mtime == 1_000_000
    assert not (root / "dev" / "null").exists()  # devices are skipped
    assert context.ignore.matches("x.log")
    assert context.dockerfile == root / "Dockerfile"
    context.close()
    assert list(private_tmp.iterdir()) == []
    context.close()  # idempotent


# (hostile archive members, message fragment)
HOSTILE: list[tuple[list[tuple[tarfile.TarInfo, bytes]], str]] = [
    ([_member("/etc/evil", data=b"x")], "absolute"),
    ([_member("../evil", data=b"x")], "'..'"),
    ([_member("a/../../evil", data=b"x")], "'..'"),
    (
        [_member("lnk", tarfile.SYMTYPE, linkname="/tmp"), _member("lnk/evil", data=b"x")],
        "non-directory",
    ),
    ([_member("hard", tarfile.LNKTYPE, linkname="../../etc/passwd")], "'..'"),
    ([_member("hard", tarfile.LNKTYPE, linkname="missing")], "hard link"),
]


@pytest.mark.parametrize(("members", "fragment"), HOSTILE)
def test_hostile_tar_entries_are_refused(
    tmp_path: Path, private_tmp: Path, members: list[tuple[tarfile.TarInfo, bytes]], fragment: str
) -> None:
    archive = _tar(tmp_path / "evil.tar", members, "w")
    with pytest.raises(ContextError, match=fragment):
        open_context(f"tar://{archive}")
    assert list(private_tmp.iterdir()) == []  # nothing left behind
    assert not (tmp_path / "evil").exists()


def test_corrupt_or_missing_archive(tmp_path: Path, private_tmp: Path) -> None:
    (tmp_path / "bad.tar.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(ContextError, match="cannot read build context archive"):
        open_context(f"tar://{tmp_path / 'bad.tar.gz'}")
    with pytest.raises(ContextError, match="does not exist"):
        open_context(f"tar://{tmp_path / 'absent.tar'}")
    assert list(private_tmp.iterdir()) == []
