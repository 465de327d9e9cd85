"""The named inputs of the files a COPY/ADD reads from the build context.

Why per file: "src/app.py changed" needs each file's own digest. A file's input covers what
the copy writes from it: its kind, permission bits, link target and content, never its mtime,
atime, owner or inode (a fresh checkout changes those and not the result; a COPY from the
context writes 0:0, or the instruction's --chown, which the instruction input covers).
The selection is the copy's own: the same matching and .dockerignore as ``copy_files``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from kiln.builder.effects import CopyEffect
from kiln.context import BuildContext, IgnoreMatcher, resolve_sources, walk_source
from kiln.context.remote_source import is_url

_CHUNK = 1 << 20

#: Prefix of a context file's input name.
FILE_INPUT = "file:"


def context_file_inputs(context: BuildContext, effect: CopyEffect) -> dict[str, str]:
    """``file:<context path>`` -> digest of what the copy takes from that entry."""
    patterns = [s for s in effect.sources if not (effect.is_add and is_url(s))]
    matches = resolve_sources(context, patterns) if patterns else []
    excluded = IgnoreMatcher.from_patterns(effect.exclude) if effect.exclude else None
    inputs: dict[str, str] = {}
    for match in matches:
        if excluded is not None and excluded.matches(match.rel_path):
            continue
        inputs[FILE_INPUT + match.rel_path] = _entry_digest(match.abs_path, follow=True)
        skipped: list[str] = []
        for rel, path in walk_source(context, match):
            if excluded is not None and (
                excluded.matches(rel) or any(rel.startswith(s + "/") for s in skipped)
            ):
                skipped.append(rel)
                continue
            inputs[f"{FILE_INPUT}{match.rel_path.rstrip('/')}/{rel}"] = _entry_digest(
                path, follow=False
            )
    return inputs


def has_unpinned_url(effect: CopyEffect) -> bool:
    """An ADD of a URL without --checksum: its content is unknown until downloaded."""
    return effect.is_add and effect.checksum is None and any(is_url(s) for s in effect.sources)


def _entry_digest(path: Path, *, follow: bool) -> str:
    info = os.stat(path) if follow else os.lstat(path)
    mode = info.st_mode
    digest = hashlib.sha256()
    if stat.S_ISLNK(mode):
        detail = "l:" + os.readlink(path)
    elif stat.S_ISDIR(mode):
        detail = "d"
    elif stat.S_ISREG(mode):
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        detail = "f:" + digest.hexdigest()
    else:
        detail = f"o:{stat.S_IFMT(mode):o}"
    text = f"{stat.S_IMODE(mode):o}\0{detail}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
