"""Write a set of changed paths as a compressed, reproducible layer blob in one pass.

Why one pass: layers can be gigabytes. The tar is produced as a stream and flows through a
sha256 (the uncompressed ``diff_id`` the image config needs), the compressor, and a second
sha256 (the blob ``digest`` the manifest needs) straight into the output file, so memory stays
constant and the file is never read back.

Parent directories: a tar entry ``a/b/c`` extracts fine without ``a/`` and ``a/b/`` entries,
but OCI tools and Docker expect them, so by default (``include_parents=True``) every missing
ancestor of a changed or deleted path is added with its current metadata. Pass
``include_parents=False`` to write exactly ``changes.changed``.

Source files (``sources``): a step may hand over regular files it never wrote into the rootfs
(a final COPY whose files nothing reads later, see ``kiln.builder.copy_files``); each becomes an
entry with the given path, mode and owner and the source's bytes, size, mtime and xattrs, as if
it had been copied there. Creating files is the slow part of a COPY, so this skips it entirely.

The tar stream is the one ``tarfile``'s ``"w|"`` mode writes (headers from ``TarInfo.tobuf``,
512-byte padding, two zero blocks, records of 10 KiB), but assembled here: file data is read
straight into one reused 1 MiB buffer that goes down the chain as it fills, instead of
``tarfile``'s small reads and concatenated stream buffer (a third of the CPU time of a layer of
incompressible data). ``growing`` lets an upload follow the blob file while it is written.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import LayerError, UnsafePathError

from .names import OPAQUE_WHITEOUT, clean_name, whiteout_name
from .snapshot import Changes
from .streams import FileSink, GrowingFile, GzipWriter, HashingWriter, Sink, ZstdWriter
from .tarentries import HardlinkTable, header_for, whiteout_header

COMPRESSIONS = ("gzip", "zstd", "none")
_CHUNK = 1 << 20  # the tar goes down the chain in writes of this size
_FIRST_CHUNK = 1 << 14  # _TarStream's buffer starts this small (see there)
_SUFFIX = {"gzip": "+gzip", "zstd": "+zstd", "none": ""}


@dataclass(frozen=True)
class SourceFile:
    """A regular file for a layer, read from ``source``, with its own mode and owner."""

    source: Path
    mode: int  # permission bits (incl. setuid/setgid/sticky), no file type
    uid: int
    gid: int


@dataclass(frozen=True)
class LayerInfo:
    """What a manifest and config need about a written layer blob."""

    digest: str  # sha256 of the blob as written (compressed)
    diff_id: str  # sha256 of the uncompressed tar
    size: int  # bytes in the blob
    compression: str  # "gzip", "zstd" or "none"

    @property
    def media_type_suffix(self) -> str:
        """``"+gzip"``, ``"+zstd"`` or ``""``: append to ``...layer.v1.tar``."""
        return _SUFFIX[self.compression]


def write_layer(
    rootfs: Path,
    changes: Changes,
    out: Path,
    *,
    compression: str = "gzip",
    level: int | None = None,
    source_date_epoch: int | None = None,
    include_parents: bool = True,
    threads: int | None = None,
    sources: Mapping[str, SourceFile] | None = None,
    growing: GrowingFile | None = None,
) -> LayerInfo:
    """Write ``changes`` of ``rootfs`` as a layer blob at ``out`` and return its digests.

    ``threads`` compressor threads (default: every CPU); the blob does not depend on it.
    ``sources``: rootfs-relative path -> file to add from elsewhere (module docstring).
    ``growing``: told about the blob file as it is written (``GrowingFile``'s writer side).
    """
    root = Path(os.path.abspath(rootfs))
    given = {clean_name(rel): file for rel, file in (sources or {}).items()}
    try:
        if compression not in COMPRESSIONS:
            raise LayerError(f"unknown layer compression {compression!r}; use {COMPRESSIONS}")
        plan = _plan(root, changes, include_parents, given)
        with open(out, "wb") as file:
            if growing is not None:
                growing.opened(out)
            blob = HashingWriter(FileSink(file, growing))
            compressor = _compressor(compression, blob, level, threads)
            tar_bytes = HashingWriter(compressor)
            try:
                _write_tar(root, plan, tar_bytes, source_date_epoch, given)
            except BaseException:
                if isinstance(compressor, GzipWriter | ZstdWriter):
                    compressor.abort()
                raise
            tar_bytes.close()
    except BaseException:
        if growing is not None:
            growing.failed()
        with contextlib.suppress(OSError):
            os.unlink(out)
        raise
    if growing is not None:
        growing.finished(blob.digest, blob.size)
    return LayerInfo(blob.digest, tar_bytes.digest, blob.size, compression)


def write_layer_from_paths(
    rootfs: Path,
    paths: Iterable[str],
    out: Path,
    *,
    compression: str = "gzip",
    level: int | None = None,
    source_date_epoch: int | None = None,
    include_parents: bool = True,
) -> LayerInfo:
    """Like ``write_layer`` for paths a step knows it wrote (directories with their subtrees)."""
    root = Path(os.path.abspath(rootfs))
    everything: set[str] = set()
    for path in paths:
        rel = clean_name(path)
        if rel:
            everything.add(rel)
        _add_subtree(root, rel, everything)
    return write_layer(
        root,
        Changes(changed=tuple(sorted(everything))),
        out,
        compression=compression,
        level=level,
        source_date_epoch=source_date_epoch,
        include_parents=include_parents,
    )


def _add_subtree(root: Path, rel: str, into: set[str]) -> None:
    checked: set[str] = set()
    pending = [rel]
    while pending:  # not recursive: a tree may be deeper than Python's recursion limit
        current = pending.pop()
        path = _checked_path(root, current, checked) if current else root
        if not path.is_dir() or path.is_symlink():
            continue
        with os.scandir(path) as entries:
            children = [entry.name for entry in entries]
        for name in children:
            child = posixpath.join(current, name) if current else name
            into.add(child)
            pending.append(child)


def _compressor(compression: str, sink: Sink, level: int | None, threads: int | None) -> Sink:
    if compression == "gzip":
        return GzipWriter(sink, level, threads)
    if compression == "zstd":
        return ZstdWriter(sink, level, threads)
    return sink


def _plan(
    root: Path, changes: Changes, include_parents: bool, sources: Mapping[str, SourceFile]
) -> list[tuple[str, str | None]]:
    """Sorted (tar name, rootfs-relative path or None for a whiteout) pairs."""
    paths = ({clean_name(path) for path in changes.changed} | set(sources)) - {""}
    deleted = {clean_name(path) for path in changes.deleted} - {""}
    if include_parents:
        for path in list(paths) + list(deleted):
            parent = posixpath.dirname(path)
            while parent and parent not in paths:
                if os.path.lexists(root / parent):
                    paths.add(parent)
                parent = posixpath.dirname(parent)
    plan: list[tuple[str, str | None]] = [(path, path) for path in paths]
    plan += [(whiteout_name(path), None) for path in deleted]
    plan += [(posixpath.join(clean_name(path), OPAQUE_WHITEOUT), None) for path in changes.opaque]
    return sorted(plan)


def _write_tar(
    root: Path,
    plan: list[tuple[str, str | None]],
    sink: Sink,
    source_date_epoch: int | None,
    sources: Mapping[str, SourceFile],
) -> None:
    hardlinks = HardlinkTable()
    tar = _TarStream(sink)
    checked: set[str] = set()
    for name, rel in plan:
        if rel is None:
            tar.add(whiteout_header(name))
            continue
        given = sources.get(rel)
        if given is not None:
            _add_source_file(tar, name, given, hardlinks, source_date_epoch)
            continue
        path = _checked_path(root, rel, checked)
        try:
            st = os.lstat(path)
        except FileNotFoundError as exc:
            raise LayerError(f"{rel!r} vanished while its layer was written") from exc
        info = header_for(
            str(path), name, st, hardlinks=hardlinks, source_date_epoch=source_date_epoch
        )
        if info is None:
            continue
        if info.type == tarfile.REGTYPE:
            _add_file(tar, info, path)
        else:
            tar.add(info)
    tar.close()


class _TarStream:
    """Writes a tar archive to a sink, byte for byte as ``tarfile.open(mode="w|")`` would."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        # Grows to _CHUNK as the archive does: zero-filling 1 MiB up front cost every layer,
        # however small, a third of a millisecond (a RUN's layer is often a few hundred bytes).
        self._buffer = memoryview(bytearray(_FIRST_CHUNK))
        self._fill = 0
        self._offset = 0  # bytes of archive so far

    def add(self, info: tarfile.TarInfo, file: io.FileIO | None = None) -> None:
        """A header, then (for a regular file) ``info.size`` bytes of ``file`` and padding."""
        self._put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
        if file is None:
            return
        left = info.size
        while left:
            if self._fill == len(self._buffer):
                self._make_room()
            room = min(len(self._buffer) - self._fill, left)
            got = file.readinto(self._buffer[self._fill : self._fill + room])
            if not got:
                raise LayerError(f"{info.name!r} changed size while its layer was written")
            self._fill += got
            self._offset += got
            left -= got
        if remainder := info.size % tarfile.BLOCKSIZE:
            self._put(bytes(tarfile.BLOCKSIZE - remainder))

    def close(self) -> None:
        """The end-of-archive blocks, padding to a whole record, and the last write."""
        self._put(bytes(2 * tarfile.BLOCKSIZE))
        if remainder := self._offset % tarfile.RECORDSIZE:
            self._put(bytes(tarfile.RECORDSIZE - remainder))
        self._flush()

    def _put(self, data: bytes) -> None:
        self._offset += len(data)
        done = 0
        while done < len(data):
            if self._fill == len(self._buffer):
                self._make_room()
            take = min(len(self._buffer) - self._fill, len(data) - done)
            self._buffer[self._fill : self._fill + take] = data[done : done + take]
            self._fill += take
            done += take

    def _make_room(self) -> None:
        """The buffer is full: grow it (up to _CHUNK), else hand it down the chain."""
        if len(self._buffer) < _CHUNK:
            grown = memoryview(bytearray(min(4 * len(self._buffer), _CHUNK)))
            grown[: self._fill] = self._buffer[: self._fill]
            self._buffer = grown
        else:
            self._flush()

    def _flush(self) -> None:
        if self._fill:
            self._sink.write(self._buffer[: self._fill])
            self._fill = 0


def _add_source_file(
    tar: _TarStream,
    name: str,
    given: SourceFile,
    hardlinks: HardlinkTable,
    source_date_epoch: int | None,
) -> None:
    st = os.lstat(given.source)
    if not stat.S_ISREG(st.st_mode):
        raise LayerError(f"{str(given.source)!r} is no longer a regular file")
    # The entry a copy would have made: one link, the copy's owner and mode, the source's rest.
    copied = os.stat_result(
        (stat.S_IFREG | given.mode, st.st_ino, st.st_dev, 1, given.uid, given.gid, st.st_size,
         st.st_atime, st.st_mtime, st.st_ctime)
    )  # fmt: skip
    info = header_for(
        str(given.source), name, copied, hardlinks=hardlinks, source_date_epoch=source_date_epoch
    )
    assert info is not None  # a regular file always has a header
    _add_file(tar, info, given.source)


def _add_file(tar: _TarStream, info: tarfile.TarInfo, path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb", buffering=0) as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise LayerError(f"{info.name!r} changed type while its layer was written")
        tar.add(info, file)


def _checked_path(root: Path, rel: str, checked: set[str] | None = None) -> Path:
    """``root/rel``, refusing a path whose parents pass through a symlink (it could leave root).

    ``checked`` remembers the directories found link-free, so each parent is looked at once
    per layer rather than once per entry below it (a tree N deep cost N^2 ``lstat`` calls).
    """
    parent, base = posixpath.split(rel)
    if checked is None:
        checked = set()
    unchecked: list[str] = []
    ancestor = parent
    while ancestor and ancestor not in checked:
        unchecked.append(ancestor)
        ancestor = posixpath.dirname(ancestor)
    prefix = f"{root}/"  # strings: a Path per step costs the path's length in parsing
    for directory in reversed(unchecked):  # top-down, as a path walk goes
        try:
            mode = os.lstat(prefix + directory).st_mode
        except (FileNotFoundError, NotADirectoryError):
            break  # nothing to pass through; reading the entry will fail on its own
        if stat.S_ISLNK(mode):
            raise UnsafePathError(
                f"{rel!r} lies under a symbolic link; refusing to read through it"
            )
        checked.add(directory)
    return (root / parent if parent else root) / base
