"""What a layer deletes: whiteouts, opaque directories, and whatever stands where an entry goes.

Why together: all three remove things from the rootfs, and every removal must respect the same
two rules. A whiteout never deletes what the same layer wrote (``written``: OCI lets a layer's
whiteout and its new entries come in any order). And over protected paths (the inplace
isolation) a whiteout or opaque directory deletes everything else there, while an entry that
would *replace* something holding protected paths is refused. A removed directory or symlink
makes earlier resolutions stale, so every such removal calls ``forget_dirs``.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
from pathlib import Path

from kiln.errors import UnsafePathError

from .protected import HINT as PROTECTED_HINT
from .protected import REMEDIES as PROTECTED_REMEDIES
from .protected import WHAT as PROTECTED_WHAT
from .protected import ProtectedPaths, remove_unprotected
from .unpack_dirs import LayerDirectories


class LayerRemoval(LayerDirectories):
    """Deletions of one layer, knowing what that layer wrote (the overlay unpacker overrides
    ``whiteout`` and ``opaque`` to record them instead)."""

    def __init__(self, rootfs: Path | str, protected: ProtectedPaths | None = None) -> None:
        super().__init__(rootfs, protected)
        self.written: set[str] = set()  # rootfs-relative real paths this layer wrote
        self.written_ancestors: set[str] = set()  # and the directories above them

    def mark_written(self, rprefix: str, base: str) -> None:
        """This layer wrote ``base`` in the real rootfs-relative directory ``rprefix``."""
        self.written.add(rprefix + base)
        rel = rprefix[:-1]
        while rel and rel not in self.written_ancestors:
            self.written_ancestors.add(rel)
            rel = posixpath.dirname(rel)

    def whiteout(self, rel: str) -> None:
        parent_rel, base = posixpath.split(rel)
        _, dprefix, rprefix = self.lookup_dir(parent_rel)
        real = rprefix + base
        if real in self.written or real in self.written_ancestors:
            return  # a whiteout never deletes what this same layer wrote
        self.remove(dprefix + base, partial=True)

    def opaque(self, dir_rel: str) -> None:
        real, dprefix, rprefix = self.lookup_dir(dir_rel)
        if os.path.isdir(real) and not os.path.islink(real):
            self.clear_lower(dprefix, rprefix)

    def clear_lower(self, dprefix: str, rprefix: str) -> None:
        """Remove everything under ``dprefix`` that this layer did not write."""
        with os.scandir(dprefix) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            rel = rprefix + name
            path = dprefix + name
            if rel in self.written or rel in self.written_ancestors:
                if os.path.isdir(path) and not os.path.islink(path):
                    self.clear_lower(path + "/", rel + "/")
            else:
                self.remove(path, partial=True)

    def clear_way(self, target: str, *, keep_dir: bool) -> bool:
        """Remove whatever is at ``target`` unless it is a directory that a directory replaces.

        True if ``target`` is free now.
        """
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return True
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return False
        self.remove(target, st)
        return True

    def remove(self, path: str, st: os.stat_result | None = None, *, partial: bool = False) -> None:
        """Delete ``path`` (a directory with its contents; a symlink itself, never its target).

        With protected paths, those at or below ``path`` stay: with ``partial`` (a whiteout,
        an opaque directory) everything else goes; without (``path`` is to be replaced by a
        new entry) that is refused.
        """
        if st is None:
            try:
                st = os.lstat(path)
            except (FileNotFoundError, NotADirectoryError):
                return  # nothing there (a whiteout below a file whites out nothing)
        protected = self.protected
        if protected is not None:
            rel = path[len(self.prefix) :] if path != self.root else ""
            if protected.touches(rel):
                if not partial:
                    raise UnsafePathError(
                        f"a layer entry would replace /{rel}, which holds protected paths "
                        f"({PROTECTED_WHAT})",
                        hint=PROTECTED_HINT,
                        remedies=PROTECTED_REMEDIES,
                    )
                if stat.S_ISDIR(st.st_mode) and not protected.covers(rel):
                    self.forget_dirs()
                    remove_unprotected(path, rel, protected)
                return
        if stat.S_ISDIR(st.st_mode):
            self.forget_dirs()
            shutil.rmtree(path)
            return
        if stat.S_ISLNK(st.st_mode):
            self.forget_dirs()
        try:
            os.unlink(path)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
