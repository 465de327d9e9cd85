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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Changes:
    """What a step changed: rootfs-relative ``/``-separated paths, sorted, no leading ``/``.

    ``changed`` holds added and modified paths (a directory appears when its own metadata
    changed, which includes its mtime moving because entries were added or removed).
    ``deleted`` is collapsed: when a directory went away only the directory is listed.
    """

    changed: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted)


class Snapshotter(Protocol):
    """Records a rootfs state, then reports the difference to it."""

    def baseline(self) -> None:
        """Remember the current state of the rootfs as the point of comparison."""

    def changes(self) -> Changes:
        """Return what changed since the last ``baseline()`` (the baseline itself is kept)."""


@dataclass(frozen=True)
class _Entry:
    """The parts of an ``lstat`` result (plus symlink target) that signal a change."""

    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    link: str | None


class WalkSnapshotter:
    """A ``Snapshotter`` that walks the whole tree with ``os.scandir`` and compares ``lstat``s.

    ``exclude`` lists rootfs-relative paths (``"proc"``, ``"sys"``, ``"dev"`` ...) that are
    neither reported nor descended into.
    """

    def __init__(self, rootfs: Path, exclude: Iterable[str] = ()) -> None:
        self.rootfs = Path(os.path.abspath(rootfs))
        self.exclude = frozenset(path.strip("/") for path in exclude)
        self._baseline: dict[str, _Entry] = {}

    def baseline(self) -> None:
        self._baseline = self._scan()

    def changes(self) -> Changes:
        current = self._scan()
        old = self._baseline
        changed = sorted(path for path, entry in current.items() if old.get(path) != entry)
        gone = sorted(path for path in old if path not in current)
        return Changes(changed=tuple(changed), deleted=_collapse(gone, current))

    def _scan(self) -> dict[str, _Entry]:
        return dict(_walk(self.rootfs, "", self.exclude))


def _walk(directory: Path, prefix: str, exclude: frozenset[str]) -> Iterator[tuple[str, _Entry]]:
    try:
        with os.scandir(directory) as it:
            entries = list(it)
    except (FileNotFoundError, NotADirectoryError):
        return  # removed while we walked; the next scan will see it gone
    for item in entries:
        rel = prefix + item.name
        if rel in exclude:
            continue
        try:
            st = item.stat(follow_symlinks=False)
            link = os.readlink(item.path) if stat.S_ISLNK(st.st_mode) else None
        except FileNotFoundError:
            continue
        yield rel, _Entry(
            st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_ctime_ns,
            st.st_ino, link,
        )  # fmt: skip
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(Path(item.path), rel + "/", exclude)


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
        if entry is not None and not stat.S_ISDIR(entry.mode):
            return True  # the directory was replaced by a file or symlink; that entry hides it
        parent = posixpath.dirname(parent)
    return False
