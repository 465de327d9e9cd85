"""Find what a build step changed in a root filesystem, without mounts.

Why stat-based: a RUN step can touch thousands of files, and the "walk" snapshotter must work in
an unprivileged pod where overlay mounts are impossible. Comparing ``lstat`` results (mode,
owner, size, mtime, ctime, inode, link target) before and after a step catches every change a
program can make through the kernel API (ctime moves on any metadata or xattr change) while
reading no file contents. Cost is proportional to the number of files, as the DESIGN says.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .tarentries import carried_xattrs


@dataclass(frozen=True)
class Changes:
    """What a step changed: rootfs-relative ``/``-separated paths, sorted, no leading ``/``.

    ``changed`` holds added and modified paths (a directory appears when its own metadata
    changed, which includes its mtime moving because entries were added or removed).
    ``deleted`` is collapsed: when a directory went away only the directory is listed.
    ``opaque`` lists directories (also in ``changed``) whose lower-layer contents are all gone;
    only the overlay snapshotter reports them (the walk snapshotter lists each deleted child).
    """

    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    opaque: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted or self.opaque)


class Snapshotter(Protocol):
    """Records a rootfs state, then reports the difference to it."""

    def baseline(self) -> None:
        """Remember the current state of the rootfs as the point of comparison."""

    def changes(self) -> Changes:
        """Return what changed since the last ``baseline()`` (the baseline itself is kept)."""


#: What signals a change: (mode, uid, gid, size, mtime_ns, ctime_ns, inode, extra), where extra
#: is a symlink's target or a directory's carried xattrs. A directory's ctime is left out (0):
#: the sandbox puts back the mtime of a directory it created a mount point in, and only the
#: ctime would show it; what else moves a directory's ctime alone (xattrs) is compared instead.
_Entry = tuple[int, int, int, int, int, int, int, object]


class WalkSnapshotter:
    """A ``Snapshotter`` that walks the whole tree with ``os.scandir`` and compares ``lstat``s.

    ``exclude`` lists rootfs-relative paths (``"proc"``, ``"sys"``, ``"dev"`` ...) that are
    neither reported nor descended into. ``rebase()`` makes the scan done by the last
    ``changes()`` the new baseline, saving a walk when nothing touched the tree in between.
    """

    def __init__(self, rootfs: Path, exclude: Iterable[str] = ()) -> None:
        self.rootfs = Path(os.path.abspath(rootfs))
        self.exclude = frozenset(path.strip("/") for path in exclude)
        self._baseline: dict[str, _Entry] = {}
        self._last: dict[str, _Entry] | None = None

    def baseline(self) -> None:
        self._baseline = self._scan()
        self._last = None

    def rebase(self) -> None:
        """Take the state seen by the last ``changes()`` as the baseline (else scan again)."""
        if self._last is None:
            self.baseline()
        else:
            self._baseline, self._last = self._last, None

    def changes(self) -> Changes:
        current = self._scan()
        self._last = current
        old = self._baseline
        changed = sorted(path for path, entry in current.items() if old.get(path) != entry)
        gone = sorted(path for path in old.keys() - current.keys())
        return Changes(changed=tuple(changed), deleted=_collapse(gone, current))

    def _scan(self) -> dict[str, _Entry]:
        return _walk(str(self.rootfs), self.exclude)


def _walk(root: str, exclude: frozenset[str]) -> dict[str, _Entry]:
    """Every path under ``root`` with its entry; an explicit stack keeps Python overhead low."""
    found: dict[str, _Entry] = {}
    lstat, readlink, is_dir, is_link = os.lstat, os.readlink, stat.S_ISDIR, stat.S_ISLNK
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                names = [item.name for item in it]
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed while we walked; the next scan will see it gone
        for name in names:
            rel = prefix + name
            if rel in exclude:
                continue
            path = directory + "/" + name
            try:
                st = lstat(path)
                mode = st.st_mode
                if is_dir(mode):
                    found[rel] = (
                        mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, 0, st.st_ino,
                        tuple(sorted(carried_xattrs(path).items())),
                    )  # fmt: skip
                    stack.append((path, rel + "/"))
                    continue
                link = readlink(path) if is_link(mode) else None
            except FileNotFoundError:
                continue
            found[rel] = (
                mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                st.st_ino, link,
            )  # fmt: skip
    return found


def _collapse(gone: list[str], current: dict[str, _Entry]) -> tuple[str, ...]:
    """Drop deleted paths hidden by a deleted ancestor or by an ancestor that is now no dir."""
    kept: list[str] = []
    kept_set: set[str] = set()
    for path in gone:  # sorted, so ancestors come first
        if not _hidden(path, kept_set, current):
            kept.append(path)
            kept_set.add(path)
    return tuple(kept)


def _hidden(path: str, deleted: set[str], current: dict[str, _Entry]) -> bool:
    parent = posixpath.dirname(path)
    while parent:
        if parent in deleted:
            return True
        entry = current.get(parent)
        if entry is not None and not stat.S_ISDIR(entry[0]):
            return True  # the directory was replaced by a file or symlink; that entry hides it
        parent = posixpath.dirname(parent)
    return False
