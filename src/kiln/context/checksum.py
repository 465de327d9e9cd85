"""A content checksum of COPY/ADD sources, for build-cache keys.

Why: a cached COPY layer may be reused only if the files it would copy are the same. The
digest covers what ends up in the layer (path, type, permission bits, size, link target and
file content) and deliberately not mtimes, owners or inode numbers, which change on every
checkout without changing the result of a COPY.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from kiln.context.resolve import SourceMatch, walk_source
from kiln.context.sources import BuildContext

_CHUNK = 1 << 20


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _record(name: str, path: Path, info: os.stat_result) -> bytes:
    """One NUL-separated line describing an entry; ``name`` is its path in the copy."""
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        kind, detail = "l", os.readlink(path)
    elif stat.S_ISDIR(mode):
        kind, detail = "d", ""
    elif stat.S_ISREG(mode):
        kind, detail = "f", f"{info.st_size}:{_file_digest(path)}"
    else:
        kind, detail = "o", f"{stat.S_IFMT(mode):o}"
    fields = (name, kind, f"{stat.S_IMODE(mode):o}", detail)
    return b"\0".join(os.fsencode(field) for field in fields) + b"\n"


def checksum_sources(context: BuildContext, matches: Iterable[SourceMatch]) -> str:
    """``sha256:<hex>`` over every source and, for directories, every visible entry below."""
    digest = hashlib.sha256()
    for match in matches:
        digest.update(_record(match.rel_path, match.abs_path, os.stat(match.abs_path)))
        for rel, path in walk_source(context, match):
            digest.update(_record(f"{match.rel_path}/{rel}", path, os.lstat(path)))
    return "sha256:" + digest.hexdigest()
