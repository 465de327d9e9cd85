"""Extract one OCI/Docker layer tar onto a root filesystem, safely and quickly.

Why not ``tarfile.extractall``: layers carry OCI semantics (``.wh.`` whiteouts, opaque
directories, a later layer replacing a directory with a file) and come from untrusted sources.
Every entry's parent is resolved with ``secure_join`` so a symlink planted by an earlier entry
(or layer) can never redirect a write outside the rootfs, and the final component is never
followed: whatever is there is replaced. The tar is read as a stream, one entry at a time
(``tarreader``). Directory mtimes are set last, and a directory is re-resolved first if the
layer removed anything meanwhile, since one of its ancestors may have become a symlink.

This module reads the tar and sends each entry where it goes; the work is in one module per job,
each saying why it is shaped as it is:

- ``unpack_dirs``: where each directory really is, resolved once per layer (the hot path);
- ``unpack_removal``: whiteouts, opaque directories, clearing what is in an entry's way;
- ``unpack_entries``: creating files, directories, links and devices with their metadata;
- ``unpack_protected``: the checks against protected paths (the inplace isolation).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import BinaryIO

from kiln.errors import LayerError, UnsafePathError

from .names import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, clean_name, whiteout_target
from .protected import ProtectedPaths
from .tarreader import REGULAR_TYPES, TarEntry, TarReader
from .unpack_entries import LayerEntries

_PARENT_CACHE_LIMIT = 1 << 16


def apply_layer(
    tar_stream: BinaryIO, rootfs: Path, *, protected: ProtectedPaths | None = None
) -> None:
    """Extract the uncompressed layer tar ``tar_stream`` onto ``rootfs`` with OCI semantics.

    Raises ``UnsafePathError`` for entries that would escape ``rootfs`` (before writing them) and
    ``LayerError`` for malformed tars.

    ``protected`` (the inplace isolation's kept paths): an entry *named* inside one is dropped,
    as Kaniko does (images carry ``/proc``, ``/etc/hosts``...); an entry that would create,
    replace, delete or link a protected path by *resolving* to it through symlinks is refused
    with ``UnsafePathError`` before anything is written. A whiteout or opaque directory above
    protected paths deletes everything else there.
    """
    _Unpacker(rootfs, protected).run(tar_stream)


class _Unpacker(LayerEntries):
    """One layer extraction: each entry's name checked and cleaned, then sent where it goes."""

    def __init__(self, rootfs: Path | str, protected: ProtectedPaths | None = None) -> None:
        super().__init__(rootfs, protected)
        self._parents: dict[str, str] = {}  # raw parent part of an entry name -> clean_name of it

    def run(self, tar_stream: BinaryIO) -> None:
        reader = TarReader(tar_stream)
        for entry in reader:
            try:
                self.entry(reader, entry)
            except (OSError, ValueError, OverflowError) as exc:
                # What the entry asks cannot be done (a device number the kernel refuses, an
                # owner out of range, a NUL in a link target...): say which entry, as an error
                # of the layer rather than a traceback.
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise LayerError(f"cannot unpack layer entry {entry.name!r}: {reason}") from exc
        self.set_dir_times()

    def entry(self, reader: TarReader, entry: TarEntry) -> None:
        name = entry.name
        head, _, base = name.rpartition("/")
        if base and base != "." and base != ".." and "\x00" not in base:
            parent_rel = self._parents.get(head)
            if parent_rel is None:
                parent_rel = self._clean_parent(head, name)
        else:
            rel = clean_name(name)
            if rel == "":
                self.root_entry(entry)
                return
            parent_rel, base = posixpath.split(rel)
        guard = self.guard
        if guard is not None and guard.named(entry, parent_rel, base):
            return  # named inside a protected path: dropped, as Kaniko does
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_WHITEOUT:
                if guard is not None:
                    guard.refuse(entry, self.lookup_dir(parent_rel)[2])
                self.opaque(parent_rel)
            else:
                target = posixpath.join(parent_rel, whiteout_target(base) or base)
                if guard is not None:
                    target_parent, target_base = posixpath.split(target)
                    guard.refuse(entry, self.lookup_dir(target_parent)[2] + target_base)
                self.whiteout(target)
            return
        _, dprefix, rprefix = self._dirs.get(parent_rel) or self.ensure_dir(parent_rel, name)
        if guard is not None and guard.guarded(rprefix):
            guard.refuse(entry, rprefix + base)
        if entry.type in REGULAR_TYPES:
            self.regular(reader, entry, dprefix, base)
        elif not self.create(entry, dprefix + base, parent_rel, base):
            return
        self.mark_written(rprefix, base)

    def _clean_parent(self, head: str, name: str) -> str:
        try:
            rel = clean_name(head)
        except UnsafePathError:
            clean_name(name)  # raises, naming the whole entry
            raise
        if len(self._parents) >= _PARENT_CACHE_LIMIT:
            self._parents.clear()
        self._parents[head] = rel
        return rel
