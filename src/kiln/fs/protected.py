"""Paths under a root that a build must never create, replace, delete or write through.

Why a type of its own in fs: the inplace isolation unpacks untrusted base images and copies
files over the container's own `/`, where kiln's code, the mounted workspace, secrets and
outputs live. A check on an entry's *name* is not enough: ``x -> /kiln`` followed by ``x/file``
names nothing protected yet writes into kiln's directory. So the unpacker and COPY resolve every
path against the root first (``secure_join``) and ask this object about the *real* path, and the
paths themselves are held in both their given and their resolved spelling (``/var/run`` is often
a symlink to ``/run``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from kiln.errors import Remedy, UnsafePathError

from .securejoin import secure_join_str

#: What the protected paths are, for messages (the inplace isolation is their only user).
WHAT = "kiln's own directory, a mount or an ignored path"
HINT = (
    "a base image or COPY/ADD must not reach these paths, also not through a symlink; "
    "use {0} or {1}, or copy elsewhere"
)
#: The options ``HINT`` names (spelled as flags or keyword arguments by whoever shows it).
REMEDIES = (Remedy("isolation", "chroot"), Remedy("isolation", "namespaces"))


@dataclass(frozen=True)
class ProtectedPaths:
    """Root-relative paths (no leading `/`) that stay as they are, with what lies below them."""

    paths: frozenset[str]

    @classmethod
    def under(cls, root: str, paths: Iterable[str]) -> ProtectedPaths:
        """``paths`` (relative to ``root``) plus where each really is, resolved inside ``root``."""
        base = os.path.abspath(root)
        prefix = base.rstrip("/") + "/"
        found: set[str] = set()
        for path in paths:
            rel = path.strip("/")
            if not rel:
                continue
            found.add(rel)
            real = secure_join_str(base, rel)
            if real.startswith(prefix):
                found.add(real[len(prefix) :])
        return cls(frozenset(found))

    def covers(self, rel: str) -> bool:
        """`rel` is protected itself or lies below a protected path."""
        rel = rel.strip("/")
        return any(rel == p or rel.startswith(p + "/") for p in self.paths)

    def holds(self, rel: str) -> bool:
        """`rel` is a directory with a protected path somewhere below it (keep it, go inside)."""
        rel = rel.strip("/")
        return rel == "" or any(p.startswith(rel + "/") for p in self.paths)

    def touches(self, rel: str) -> bool:
        """Something at or below `rel` is protected (``covers`` or ``holds``)."""
        return self.covers(rel) or self.holds(rel)

    def refuse(self, what: str, real_rel: str) -> UnsafePathError:
        """The error for ``what`` (an entry, a COPY target) that reached ``/real_rel``."""
        return UnsafePathError(
            f"{what} resolves to /{real_rel.strip('/')}, which is protected ({WHAT})", hint=HINT
        )


def remove_unprotected(directory: str, rel: str, protected: ProtectedPaths) -> None:
    """Delete everything below ``directory`` (root-relative ``rel``) but protected paths.

    Directories holding protected paths stay and are entered; symlinks are removed, never
    followed.
    """
    with os.scandir(directory) as entries:
        children = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_dir in children:
        child = f"{rel}/{name}" if rel else name
        path = f"{directory}/{name}"
        if protected.covers(child):
            continue
        if is_dir and protected.holds(child):
            remove_unprotected(path, child, protected)
        elif is_dir:
            shutil.rmtree(path)
        else:
            os.unlink(path)
