"""Extract one OCI/Docker layer tar onto a root filesystem, safely.

Why not ``tarfile.extractall``: layers carry OCI semantics (``.wh.`` whiteouts, opaque
directories, a later layer replacing a directory with a file) and come from untrusted sources.
Every entry's parent is resolved with ``secure_join`` so a symlink planted by an earlier entry
(or layer) can never redirect a write outside the rootfs, and the final component is never
followed: whatever is there is replaced. The tar is read as a stream, one entry at a time.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
from pathlib import Path
from typing import BinaryIO

from kiln.errors import LayerError, UnsafePathError

from .metadata import WarnOnce, apply_metadata, set_times
from .names import OPAQUE_WHITEOUT, clean_name, whiteout_target
from .securejoin import secure_join

_COPY_CHUNK = 1 << 20


def apply_layer(tar_stream: BinaryIO, rootfs: Path) -> None:
    """Extract the uncompressed layer tar ``tar_stream`` onto ``rootfs`` with OCI semantics.

    Raises ``UnsafePathError`` for entries that would escape ``rootfs`` (before writing them) and
    ``LayerError`` for malformed tars.
    """
    _Unpacker(Path(os.path.abspath(rootfs))).run(tar_stream)


class _Unpacker:
    """State of one layer extraction: what this layer wrote, and directories awaiting mtimes."""

    def __init__(self, rootfs: Path) -> None:
        self.rootfs = rootfs
        self.written: set[str] = set()
        self.written_ancestors: set[str] = set()
        self.dir_times: list[tuple[Path, tarfile.TarInfo]] = []
        self.warn = WarnOnce()

    def run(self, tar_stream: BinaryIO) -> None:
        try:
            with tarfile.open(fileobj=tar_stream, mode="r|", errors="surrogateescape") as tar:
                for member in tar:
                    self.entry(tar, member)
                    tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every header
        except tarfile.TarError as exc:
            raise LayerError(f"malformed layer tar: {exc}") from exc
        # Children changed their parents' mtimes; set directories last, deepest first.
        for path, member in sorted(self.dir_times, key=lambda item: -len(item[0].parts)):
            if path.is_dir() and not path.is_symlink():  # a later entry may have replaced it
                set_times(path, member)

    def entry(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        rel = clean_name(member.name)
        parent_rel, base = posixpath.split(rel)
        if base == OPAQUE_WHITEOUT:
            self.opaque(parent_rel)
            return
        deleted = whiteout_target(base) if base else None
        if deleted is not None:
            self.whiteout(posixpath.join(parent_rel, deleted))
            return
        if rel == "":
            self.root_entry(member)
            return
        parent = self.ensure_parent(parent_rel)
        target = parent / base
        if self.create(tar, member, target):
            self.mark_written(self.relative(target))

    # --- whiteouts -------------------------------------------------------------------------

    def whiteout(self, rel: str) -> None:
        parent_rel, base = posixpath.split(rel)
        target = secure_join(self.rootfs, parent_rel) / base
        real = self.relative(target)
        if real in self.written or real in self.written_ancestors:
            return  # a whiteout never deletes what this same layer wrote
        _remove(target)

    def opaque(self, dir_rel: str) -> None:
        directory = secure_join(self.rootfs, dir_rel)
        if directory.is_dir() and not directory.is_symlink():
            self.clear_lower(directory, self.relative(directory))

    def relative(self, path: Path) -> str:
        """The rootfs-relative name of a path that ``secure_join`` produced ("" for the root)."""
        rel = path.relative_to(self.rootfs).as_posix()
        return "" if rel == "." else rel

    def clear_lower(self, directory: Path, dir_rel: str) -> None:
        """Remove everything under ``directory`` that this layer did not write."""
        with os.scandir(directory) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            rel = posixpath.join(dir_rel, name) if dir_rel else name
            path = directory / name
            if rel in self.written or rel in self.written_ancestors:
                if path.is_dir() and not path.is_symlink():
                    self.clear_lower(path, rel)
            else:
                _remove(path)

    # --- creating entries ------------------------------------------------------------------

    def root_entry(self, member: tarfile.TarInfo) -> None:
        if not member.isdir():
            raise UnsafePathError(f"layer entry {member.name!r} would replace the root directory")
        apply_metadata(self.rootfs, member, self.warn)
        self.dir_times.append((self.rootfs, member))

    def ensure_parent(self, parent_rel: str) -> Path:
        parent = secure_join(self.rootfs, parent_rel)
        try:
            parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise LayerError(f"layer entry parent {parent_rel!r} is not a directory") from exc
        return parent

    def create(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> bool:
        """Create ``target`` from ``member``; False if it was skipped (device without privilege)."""
        if member.islnk():
            self.hardlink(member, target)
            return True  # a hardlink shares the target's inode and metadata
        self.clear_way(target, keep_dir=member.isdir())
        if member.isdir():
            if not target.exists():
                target.mkdir(mode=0o700)
        elif member.isreg():
            self.write_file(tar, member, target)
        elif member.issym():
            os.symlink(member.linkname, target)
        elif member.ischr() or member.isblk() or member.isfifo():
            if not self.make_node(member, target):
                return False
        else:
            raise LayerError(f"layer entry {member.name!r} has unsupported type {member.type!r}")
        apply_metadata(target, member, self.warn)
        if member.isdir():
            self.dir_times.append((target, member))
        else:
            set_times(target, member)
        return True

    def clear_way(self, target: Path, *, keep_dir: bool) -> None:
        """Remove whatever is at ``target`` unless it is a directory that a directory replaces."""
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return
        _remove(target)

    def write_file(self, tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
        source = tar.extractfile(member)
        if source is None:
            raise LayerError(f"layer entry {member.name!r} has no data")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(target, flags, 0o600)
        copied = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(_COPY_CHUNK):
                out.write(chunk)
                copied += len(chunk)
        if copied != member.size:
            raise LayerError(f"layer entry {member.name!r}: {copied} of {member.size} bytes")

    def hardlink(self, member: tarfile.TarInfo, target: Path) -> None:
        link_rel = clean_name(member.linkname)
        if link_rel == "":
            raise UnsafePathError(f"hardlink {member.name!r} points at the root directory")
        source = secure_join(self.rootfs, link_rel, follow_final=False)
        try:
            source_stat = os.lstat(source)
        except FileNotFoundError as exc:
            raise LayerError(
                f"hardlink {member.name!r} points at missing {member.linkname!r}"
            ) from exc
        if stat.S_ISDIR(source_stat.st_mode):
            raise LayerError(f"hardlink {member.name!r} points at directory {member.linkname!r}")
        if source == target:
            return  # linking a path to itself: already done
        self.clear_way(target, keep_dir=False)
        os.link(source, target, follow_symlinks=False)

    def make_node(self, member: tarfile.TarInfo, target: Path) -> bool:
        mode = member.mode & 0o7777
        try:
            if member.isfifo():
                os.mkfifo(target, mode)
            else:
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(target, mode | kind, os.makedev(member.devmajor, member.devminor))
        except PermissionError:
            self.warn("mknod", f"cannot create device nodes (no privilege); skipped {member.name}")
            return False
        return True

    def mark_written(self, rel: str) -> None:
        self.written.add(rel)
        parent = posixpath.dirname(rel)
        while parent and parent not in self.written_ancestors:
            self.written_ancestors.add(parent)
            parent = posixpath.dirname(parent)


def _remove(path: Path) -> None:
    """Delete ``path`` (a directory with its contents; a symlink itself, never its target)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
        return
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise
