"""Sockets in the context are skipped by COPY (BuildKit does not transfer them); FIFOs are
refused with a clear, located error. Real builds through the CLI, checked with skopeo and
Python's tarfile."""

from __future__ import annotations

import json
import os
import socket
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.tools import run_kiln, skopeo_inspect


@contextmanager
def listening_socket(path: Path) -> Iterator[None]:
    """A UNIX socket bound at ``path`` (the file stays after close, as a stale socket would)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(str(path))
        yield
    finally:
        sock.close()


def archive_paths(archive: Path) -> set[str]:
    """Every path in every layer of a docker-archive tarball."""
    names: set[str] = set()
    with tarfile.open(archive) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer), mode="r:*") as inner:
                names.update(member.name.rstrip("/") for member in inner.getmembers())
    return names


def _context(tmp_path: Path, dockerfile: str) -> Path:
    context = tmp_path / "ctx"
    (context / "sub").mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile)
    (context / "a.txt").write_text("a\n")
    (context / "sub" / "b.txt").write_text("b\n")
    return context


def _build(context: Path, out: Path) -> tuple[int, str]:
    result = run_kiln("build", "--no-push", "--tar-path", str(out), str(context))
    return result.returncode, result.stderr


def test_copy_dot_skips_sockets(tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM scratch\nCOPY . /ctx/\n")
    out = tmp_path / "image.tar"
    with listening_socket(context / "app.sock"), listening_socket(context / "sub" / "s.sock"):
        status, stderr = _build(context, out)
    assert status == 0, stderr
    skopeo_inspect(f"docker-archive:{out}")  # a well-formed image
    paths = archive_paths(out)
    assert {"ctx/a.txt", "ctx/sub/b.txt", "ctx/Dockerfile"} <= paths
    assert not {p for p in paths if p.endswith(".sock")}


def test_a_socket_named_as_a_source_is_not_found(tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM scratch\nCOPY a.txt /a\nCOPY app.sock /app.sock\n")
    with listening_socket(context / "app.sock"):
        status, stderr = _build(context, tmp_path / "image.tar")
    assert status != 0
    assert "stat app.sock: file does not exist" in stderr
    assert f"{context / 'Dockerfile'}:3\n" in stderr


def test_a_fifo_is_still_a_clear_error(tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM scratch\nCOPY . /ctx/\n")
    os.mkfifo(context / "sub" / "pipe")
    status, stderr = _build(context, tmp_path / "image.tar")
    assert status != 0
    assert "pipe: not a regular file, directory or symlink" in stderr
    assert f"{context / 'Dockerfile'}:2\n" in stderr
    assert "Traceback" not in stderr
