"""ADD of a local tar archive: recognise it and read its members.

Why its own module: Docker unpacks an ADD source that is a tar archive, plain or compressed with
gzip, bzip2, xz or zstd, and copies anything else as a file (including a compressed file that is
not a tar). Recognition is by content, never by file name, as Docker does.
"""

from __future__ import annotations

import bz2
import lzma
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from kiln.fs import open_layer

_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_USTAR_OFFSET = 257


def _open_stream(path: Path) -> BinaryIO:
    with path.open("rb") as probe:
        magic = probe.read(6)
    if magic.startswith(_BZIP2):
        return cast(BinaryIO, bz2.open(path, "rb"))
    if magic.startswith(_XZ):
        return cast(BinaryIO, lzma.open(path, "rb"))
    return open_layer(path)  # gzip, zstd or uncompressed


def is_archive(path: Path) -> bool:
    """Is path a tar archive (possibly compressed) that ADD should unpack?"""
    try:
        with _open_stream(path) as stream:
            header = stream.read(512)
    except (OSError, EOFError, lzma.LZMAError, ValueError):
        return False
    if len(header) < 512:
        return False
    if header[_USTAR_OFFSET : _USTAR_OFFSET + 5] == b"ustar":
        return True
    try:
        tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


@contextmanager
def archive_members(path: Path) -> Iterator[Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]]:
    """Stream (member, content) pairs of an archive; content is None for non-regular members."""
    with _open_stream(path) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:

        def members() -> Iterator[tuple[tarfile.TarInfo, BinaryIO | None]]:
            for member in tar:
                content = tar.extractfile(member) if member.isreg() else None
                yield member, cast(BinaryIO | None, content)

        yield members()
