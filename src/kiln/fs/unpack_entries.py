"""Creating one layer entry (file, directory, symlink, hardlink, device) where it belongs.

Why optimistic: entries are created with ``O_CREAT|O_EXCL``, ``mkdir``, ``symlink``...; only an
``EEXIST`` makes us look at and clear what is in the way (``clear_way``), so the common case,
an empty spot, costs no ``lstat``. The final component is never followed: whatever is there is
replaced. A regular file is written and finished through its descriptor, and
``fchown``/``fchmod`` are skipped when creating it already gave the wanted owner and mode
(``gid_for_new_files``), so such a file costs four system calls: ``openat``, ``write``,
``utimensat``, ``close``. Directory mtimes are set last (``set_dir_times``), since their
children change them.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from kiln.errors import LayerError, UnsafePathError

from .metadata import WarnOnce, apply_metadata, has_xattrs, mtime_ns, set_times
from .protected import ProtectedPaths
from .securejoin import secure_join_str
from .tarreader import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    LNKTYPE,
    SYMTYPE,
    TarEntry,
    TarReader,
)
from .unpack_protected import ProtectedGuard, link_target
from .unpack_removal import LayerRemoval

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NODES = frozenset((CHRTYPE, BLKTYPE, FIFOTYPE))


class LayerEntries(LayerRemoval):
    """Entry creation of one layer, with the directories awaiting their mtimes (the overlay
    unpacker overrides ``hardlink``)."""

    def __init__(self, rootfs: Path | str, protected: ProtectedPaths | None = None) -> None:
        super().__init__(rootfs, protected)
        self.guard = ProtectedGuard(protected) if protected is not None else None
        self.warn = WarnOnce()
        self.dir_times: list[tuple[str, str, TarEntry]] = []  # (real rel, path, entry)

    def set_dir_times(self) -> None:
        """Give directories their mtimes, deepest first, after their children changed them."""
        for rel, path, entry in sorted(self.dir_times, key=lambda item: -item[0].count("/")):
            if self.still_directory(rel, path):  # a later entry may have replaced it
                set_times(path, entry)

    def still_directory(self, rel: str, path: str) -> bool:
        """True if ``path`` (rel inside the rootfs) is still a directory, reached as ``rel``.

        Once a directory or symlink was removed, one of ``path``'s ancestors may have become a
        symlink (leading outside the rootfs, even), so the path is resolved afresh first.
        """
        try:
            if self.removed_any and secure_join_str(self.root, rel) != path:
                return False
            return stat.S_ISDIR(os.lstat(path).st_mode)
        except (OSError, UnsafePathError):
            return False

    def root_entry(self, entry: TarEntry) -> None:
        if entry.type != DIRTYPE:
            raise UnsafePathError(f"layer entry {entry.name!r} would replace the root directory")
        apply_metadata(self.root, entry, self.warn)
        self.dir_times.append(("", self.root, entry))
        self.root_changed()

    def regular(self, reader: TarReader, entry: TarEntry, dprefix: str, base: str) -> None:
        """Create the regular file ``dprefix + base`` with ``entry``'s data and metadata."""
        target = dprefix + base
        mode = entry.mode & 0o7777
        creator = self.creator
        if (
            creator is not None
            and entry.uid == creator.uid
            and not mode & creator.chmod_bits
            and (not entry.pax_headers or not has_xattrs(entry))
            and entry.gid == self.gid_for_new_files(dprefix)
        ):
            fd = self._create_file(target, mode)  # created as it should end up
            try:
                copied = reader.copy_to(fd)
                ns = mtime_ns(entry)
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)
        else:
            fd = self._create_file(target, 0o600)
            try:
                copied = reader.copy_to(fd)
                apply_metadata(fd, entry, self.warn)
                set_times(fd, entry)
            finally:
                os.close(fd)
        if copied != entry.size:
            raise LayerError(f"layer entry {entry.name!r}: {copied} of {entry.size} bytes")

    def _create_file(self, target: str, mode: int) -> int:
        try:
            return os.open(target, _CREATE, mode)
        except FileExistsError:
            self.clear_way(target, keep_dir=False)
            return os.open(target, _CREATE, mode)

    def create(self, entry: TarEntry, target: str, parent_rel: str, base: str) -> bool:
        """Create a non-regular entry at ``target``; False if skipped (device, no privilege)."""
        kind = entry.type
        if kind == LNKTYPE:
            self.hardlink(entry, target)
            return True  # a hardlink shares the target's inode and metadata
        if kind == DIRTYPE:
            self.make_dir(target)
            apply_metadata(target, entry, self.warn)
            found = self.made_dir(f"{parent_rel}/{base}" if parent_rel else base, target)
            self.dir_times.append((found[2][:-1], target, entry))
            return True
        if kind == SYMTYPE:
            try:
                os.symlink(entry.linkname, target)
            except FileExistsError:
                self.clear_way(target, keep_dir=False)
                os.symlink(entry.linkname, target)
        elif kind in _NODES:
            if not self.make_node(entry, target):
                return False
        else:
            raise LayerError(f"layer entry {entry.name!r} has unsupported type {kind!r}")
        apply_metadata(target, entry, self.warn, chmod=kind != SYMTYPE)
        set_times(target, entry)
        return True

    def make_dir(self, target: str) -> None:
        try:
            os.mkdir(target, 0o700)
        except FileExistsError:
            if self.clear_way(target, keep_dir=True):
                os.mkdir(target, 0o700)

    def hardlink(self, entry: TarEntry, target: str) -> None:
        link_rel = link_target(entry)
        if link_rel == "":
            raise UnsafePathError(f"hardlink {entry.name!r} points at the root directory")
        link_parent, link_base = posixpath.split(link_rel)
        _, dprefix, rprefix = self.lookup_dir(link_parent)
        if self.guard is not None:
            self.guard.refuse(entry, rprefix + link_base)
        source = dprefix + link_base
        try:
            source_stat = os.lstat(source)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise LayerError(
                f"hardlink {entry.name!r} points at missing {entry.linkname!r}"
            ) from exc
        if stat.S_ISDIR(source_stat.st_mode):
            raise LayerError(f"hardlink {entry.name!r} points at directory {entry.linkname!r}")
        if source == target:
            return  # linking a path to itself: already done
        if source.startswith(target + "/"):
            raise LayerError(
                f"hardlink {entry.name!r} points at {entry.linkname!r}, which it would replace"
            )
        try:
            os.link(source, target, follow_symlinks=False)
        except FileExistsError:
            self.clear_way(target, keep_dir=False)
            os.link(source, target, follow_symlinks=False)

    def make_node(self, entry: TarEntry, target: str) -> bool:
        mode = entry.mode & 0o7777
        try:
            try:
                _mknod(entry, target, mode)
            except FileExistsError:
                self.clear_way(target, keep_dir=False)
                _mknod(entry, target, mode)
        except PermissionError:
            self.warn("mknod", f"cannot create device nodes (no privilege); skipped {entry.name}")
            return False
        return True


def _mknod(entry: TarEntry, target: str, mode: int) -> None:
    if entry.type == FIFOTYPE:
        os.mkfifo(target, mode)
    else:
        kind = stat.S_IFCHR if entry.type == CHRTYPE else stat.S_IFBLK
        os.mknod(target, mode | kind, os.makedev(entry.devmajor, entry.devminor))
