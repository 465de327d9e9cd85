"""Read a step's changes out of an overlay upper directory.

Why a scan of the upper only: everything a step created, modified or deleted is in the upper
directory, so this costs what the step changed. Overlay spells deletions its own way and the
layer must use OCI's: a character device 0/0 becomes a whiteout for its path, a directory with
the ``overlay.opaque`` xattr becomes an opaque directory (its lower contents are gone).

Overlay also copies up directories whose metadata nobody changed (the parents of a new file, or
a directory the sandbox created a mount point in and put back). Such a directory is reported
only if its mode, owner, mtime or carried xattrs differ from the lower one it hides: exactly
when the walk snapshotter would report it; its changed children still bring it into the layer
as a parent entry.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from .overlay import TRUSTED_PREFIX
from .snapshot import Changes
from .tarentries import carried_xattrs


def overlay_changes(
    upper: Path,
    lowers: Sequence[Path],
    exclude: Iterable[str] = (),
    *,
    xattr_prefix: str = TRUSTED_PREFIX,
) -> Changes:
    """What the step whose writes went to ``upper`` changed, over ``lowers`` (bottom-first)."""
    scan = _Scan(str(upper), [str(p) for p in reversed(lowers)], xattr_prefix)
    scan.walk(str(upper), "", frozenset(p.strip("/") for p in exclude))
    return Changes(
        changed=tuple(sorted(scan.changed)),
        deleted=tuple(sorted(scan.deleted)),
        opaque=tuple(sorted(scan.opaque)),
    )


class _Scan:
    def __init__(self, upper: str, lowers_top_first: list[str], xattr_prefix: str) -> None:
        self.upper = upper
        self.lowers = lowers_top_first
        self.opaque_xattr = xattr_prefix + "opaque"
        self.changed: list[str] = []
        self.deleted: list[str] = []
        self.opaque: list[str] = []

    def walk(self, directory: str, prefix: str, exclude: frozenset[str]) -> None:
        pending = [(directory, prefix)]  # a stack: a tree may be deeper than the recursion limit
        while pending:
            directory, prefix = pending.pop()
            with os.scandir(directory) as it:
                entries = list(it)
            for entry in entries:
                rel = prefix + entry.name
                if rel in exclude:
                    continue
                st = entry.stat(follow_symlinks=False)
                mode = st.st_mode
                if stat.S_ISCHR(mode) and st.st_rdev == 0:
                    self.deleted.append(rel)
                elif stat.S_ISDIR(mode):
                    if self._is_opaque(entry.path):
                        self.opaque.append(rel)
                        self.changed.append(rel)
                    elif not self._same_as_lower(entry.path, rel, st):
                        self.changed.append(rel)
                    pending.append((entry.path, rel + "/"))
                else:
                    self.changed.append(rel)

    def _is_opaque(self, path: str) -> bool:
        try:
            return os.getxattr(path, self.opaque_xattr, follow_symlinks=False) == b"y"
        except OSError:
            return False

    def _same_as_lower(self, path: str, rel: str, st: os.stat_result) -> bool:
        for lower in self.lowers:
            candidate = os.path.join(lower, rel)
            try:
                old = os.lstat(candidate)
            except (FileNotFoundError, NotADirectoryError):
                continue
            if not stat.S_ISDIR(old.st_mode):
                return False  # a whiteout or a file: the directory is new in this step
            return (
                old.st_mode == st.st_mode
                and old.st_uid == st.st_uid
                and old.st_gid == st.st_gid
                and old.st_mtime_ns == st.st_mtime_ns
                and carried_xattrs(candidate) == carried_xattrs(path)
            )
        return False
