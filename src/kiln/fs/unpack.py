"""Extract one OCI/Docker layer tar onto a root filesystem, safely and quickly.

Why not ``tarfile.extractall``: layers carry OCI semantics (``.wh.`` whiteouts, opaque
directories, a later layer replacing a directory with a file) and come from untrusted sources.
Every entry's parent is resolved with ``secure_join`` so a symlink planted by an earlier entry
(or layer) can never redirect a write outside the rootfs, and the final component is never
followed: whatever is there is replaced. The tar is read as a stream, one entry at a time
(``tarreader``). Directory mtimes are set last, and a directory is re-resolved first if the
layer removed anything meanwhile, since one of its ancestors may have become a symlink.

Why it is shaped for speed: base images hold 10^5 small files, and per-file Python overhead is
what unpacking costs. So the hot path works on ``str`` paths and remembers each directory it
resolved (``_dirs``: entry name -> real directory), so ``secure_join`` and ``mkdir`` run once per
directory, not once per file. That cache stays exact because a resolution only passes through
directories and symlinks that exist: creating something where nothing was cannot change it, and
every removal of a directory or a symlink (replaced by a later entry, a whiteout, an opaque
directory) empties it. Entries are created optimistically (``O_CREAT|O_EXCL``, ``mkdir``,
``symlink``...): only an ``EEXIST`` makes us look at and clear what is in the way. A regular
file is written and finished through its descriptor, and ``fchown``/``fchmod`` are skipped when
creating it already gave the wanted owner and mode (known from the process's fsuid, fsgid and
umask and the directory's group, setgid bit and default ACL), so such a file costs four system
calls: ``openat``, ``write``, ``utimensat``, ``close``.

Protected paths (the inplace isolation unpacks over the container's own `/`, next to kiln): the
check is on where an entry *lands*, after resolving its parent, not on its name, because
``x -> /kiln`` followed by ``x/file`` names nothing protected. Per directory it costs one cached
lookup, so only entries in directories at or above a protected path pay for the exact check.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
from pathlib import Path
from typing import BinaryIO

from kiln.errors import LayerError, UnsafePathError

from .metadata import WarnOnce, apply_metadata, has_xattrs, mtime_ns, set_times
from .names import OPAQUE_WHITEOUT, WHITEOUT_PREFIX, clean_name, whiteout_target
from .protected import HINT as PROTECTED_HINT
from .protected import REMEDIES as PROTECTED_REMEDIES
from .protected import WHAT as PROTECTED_WHAT
from .protected import ProtectedPaths, remove_unprotected
from .securejoin import secure_join_str
from .tarreader import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    LNKTYPE,
    REGULAR_TYPES,
    SYMTYPE,
    TarEntry,
    TarReader,
)

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_NODES = frozenset((CHRTYPE, BLKTYPE, FIFOTYPE))
_ACL_DEFAULT = "system.posix_acl_default"
_NO_ACL = frozenset((errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP))
_UNKNOWN = -1
_PARENT_CACHE_LIMIT = 1 << 16

#: (real path, real path + "/", rootfs-relative real path + "/" or "" for the root)
_Dir = tuple[str, str, str]


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


class _Creator:
    """Who files are created as: fsuid, fsgid and umask, read once per layer from ``/proc``."""

    def __init__(self, uid: int, gid: int, umask: int) -> None:
        self.uid = uid
        self.gid = gid
        #: mode bits that creating a file cannot give by itself (so they need an fchmod)
        self.chmod_bits = umask | 0o7000

    @classmethod
    def current(cls) -> _Creator | None:
        """The current process's, or None if unknown (then every file gets fchown + fchmod)."""
        fields: dict[str, list[str]] = {}
        try:
            with open("/proc/thread-self/status", encoding="ascii", errors="replace") as status:
                for line in status:
                    key, _, value = line.partition(":")
                    fields[key] = value.split()
            return cls(int(fields["Uid"][3]), int(fields["Gid"][3]), int(fields["Umask"][0], 8))
        except (OSError, KeyError, IndexError, ValueError):
            return None


class _Unpacker:
    """State of one layer extraction: what this layer wrote, caches, directories awaiting mtimes."""

    def __init__(self, rootfs: Path | str, protected: ProtectedPaths | None = None) -> None:
        self.root = os.path.abspath(rootfs)
        self.protected = protected
        self._name_guard: dict[str, bool] = {}  # clean parent name -> names below it may be kept
        self._real_guard: dict[str, bool] = {}  # rprefix -> protected paths at or below it
        self.prefix = self.root if self.root.endswith("/") else self.root + "/"
        self.written: set[str] = set()
        self.written_ancestors: set[str] = set()
        self.dir_times: list[tuple[str, str, TarEntry]] = []  # (real rel, path, entry)
        self.removed_any = False  # did this layer remove a directory or symlink?
        self.warn = WarnOnce()
        self.creator = _Creator.current()
        self._dirs: dict[str, _Dir] = {}  # clean_name of a directory -> where it really is
        self._parents: dict[str, str] = {}  # raw parent part of an entry name -> clean_name of it
        self._new_gid: dict[str, int] = {}  # real dir + "/" -> gid new files get (or _UNKNOWN)

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
        # Children changed their parents' mtimes; set directories last.
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
        if self.protected is not None and self._named_protected(entry, parent_rel, base):
            return  # named inside a protected path: dropped, as Kaniko does
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_WHITEOUT:
                if self.protected is not None:
                    self._refuse_protected(entry, self.lookup_dir(parent_rel)[2])
                self.opaque(parent_rel)
            else:
                target = posixpath.join(parent_rel, whiteout_target(base) or base)
                if self.protected is not None:
                    self._refuse_resolved(entry, target)
                self.whiteout(target)
            return
        _, dprefix, rprefix = self._dirs.get(parent_rel) or self.ensure_dir(parent_rel, name)
        if self.protected is not None and self._guarded(rprefix):
            self._refuse_protected(entry, rprefix + base)
        if entry.type in REGULAR_TYPES:
            self.regular(reader, entry, dprefix, base)
        elif not self.create(entry, dprefix + base, parent_rel, base):
            return
        self.written.add(rprefix + base)
        if rprefix and rprefix[:-1] not in self.written_ancestors:
            self._mark_ancestors(rprefix[:-1])

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

    # --- protected paths -----------------------------------------------------------------------

    def _named_protected(self, entry: TarEntry, parent_rel: str, base: str) -> bool:
        """True if ``entry`` names (or hardlinks to) a protected path: it is to be dropped."""
        protected = self.protected
        assert protected is not None
        touched = self._name_guard.get(parent_rel)
        if touched is None:
            touched = self._name_guard[parent_rel] = protected.touches(parent_rel)
        if entry.type == LNKTYPE and protected.covers(_link_target(entry)):
            return True
        if not touched:
            return False
        if base == OPAQUE_WHITEOUT:
            return protected.covers(parent_rel)
        if base.startswith(WHITEOUT_PREFIX):
            base = whiteout_target(base) or base
        return protected.covers(f"{parent_rel}/{base}" if parent_rel else base)

    def _guarded(self, rprefix: str) -> bool:
        """Protected paths lie in or below the real directory ``rprefix`` (cached)."""
        guarded = self._real_guard.get(rprefix)
        if guarded is None:
            assert self.protected is not None
            guarded = self._real_guard[rprefix] = self.protected.touches(rprefix)
        return guarded

    def _refuse_protected(self, entry: TarEntry, real_rel: str) -> None:
        """Raise if ``entry``, resolved to ``real_rel``, lands on a protected path."""
        if self.protected is not None and self.protected.covers(real_rel):
            raise self.protected.refuse(f"layer entry {entry.name!r}", real_rel)

    def _refuse_resolved(self, entry: TarEntry, rel: str) -> None:
        """``_refuse_protected`` for rootfs-relative ``rel``, its parent resolved first."""
        parent_rel, base = posixpath.split(rel)
        self._refuse_protected(entry, self.lookup_dir(parent_rel)[2] + base)

    def _mark_ancestors(self, rel: str) -> None:
        while rel and rel not in self.written_ancestors:
            self.written_ancestors.add(rel)
            rel = posixpath.dirname(rel)

    # --- directories ---------------------------------------------------------------------------

    def ensure_dir(self, rel: str, name: str | None = None) -> _Dir:
        """The real directory for rootfs-relative ``rel``, created (with parents) if missing.

        ``name``: the entry it is the parent of, for messages.
        """
        cached = self._dirs.get(rel)
        if cached is not None:
            return cached
        real = secure_join_str(self.root, rel)
        protected = self.protected
        if protected is not None and protected.covers(real[len(self.prefix) :]):
            # checked before anything is created: a symlink may lead into a protected path
            reached = real[len(self.prefix) :]
            if name is None:
                raise protected.refuse(f"layer entry directory {rel!r}", reached)
            raise protected.refuse(f"layer entry {name!r}", f"{reached}/{name.rpartition('/')[2]}")
        try:
            _mkdirs(real, 0o755)
        except (FileExistsError, NotADirectoryError) as exc:
            raise LayerError(f"layer entry parent {rel!r} is not a directory") from exc
        found = self._dir(real)
        self._dirs[rel] = found
        return found

    def lookup_dir(self, rel: str) -> _Dir:
        """Like ``ensure_dir`` without creating anything (the result may not exist)."""
        cached = self._dirs.get(rel)
        return cached if cached is not None else self._dir(secure_join_str(self.root, rel))

    def _dir(self, real: str) -> _Dir:
        if real == self.root:
            return self.root, self.prefix, ""
        return real, real + "/", real[len(self.prefix) :] + "/"

    def forget_dirs(self) -> None:
        """A directory or symlink was removed: resolutions made before may be stale."""
        self.removed_any = True
        self._dirs.clear()
        self._new_gid.clear()

    def _gid_for_new_files(self, dprefix: str) -> int:
        """The group a file created in directory ``dprefix`` gets, or _UNKNOWN.

        _UNKNOWN too if a default ACL there (rather than the umask) decides its mode.
        """
        gid = self._new_gid.get(dprefix)
        if gid is not None:
            return gid
        gid = _UNKNOWN
        creator = self.creator
        if creator is not None:
            st = os.stat(dprefix)
            if st.st_mode & stat.S_ISGID:
                gid = st.st_gid
            elif st.st_gid == creator.gid:  # whether or not the mount says "grpid"
                gid = creator.gid
            if gid != _UNKNOWN:
                try:
                    os.getxattr(dprefix, _ACL_DEFAULT)
                    gid = _UNKNOWN
                except OSError as exc:
                    if exc.errno not in _NO_ACL:
                        gid = _UNKNOWN
        self._new_gid[dprefix] = gid
        return gid

    # --- whiteouts -----------------------------------------------------------------------------

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

    # --- creating entries ----------------------------------------------------------------------

    def root_entry(self, entry: TarEntry) -> None:
        if entry.type != DIRTYPE:
            raise UnsafePathError(f"layer entry {entry.name!r} would replace the root directory")
        apply_metadata(self.root, entry, self.warn)
        self.dir_times.append(("", self.root, entry))
        self._new_gid.pop(self.prefix, None)

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
            and entry.gid == self._gid_for_new_files(dprefix)
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
            found = self._dir(target)
            self.dir_times.append((found[2][:-1], target, entry))
            self._dirs[f"{parent_rel}/{base}" if parent_rel else base] = found
            self._new_gid.pop(found[1], None)
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

    def hardlink(self, entry: TarEntry, target: str) -> None:
        link_rel = _link_target(entry)
        if link_rel == "":
            raise UnsafePathError(f"hardlink {entry.name!r} points at the root directory")
        link_parent, link_base = posixpath.split(link_rel)
        _, dprefix, rprefix = self.lookup_dir(link_parent)
        self._refuse_protected(entry, rprefix + link_base)
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
                self._mknod(entry, target, mode)
            except FileExistsError:
                self.clear_way(target, keep_dir=False)
                self._mknod(entry, target, mode)
        except PermissionError:
            self.warn("mknod", f"cannot create device nodes (no privilege); skipped {entry.name}")
            return False
        return True

    @staticmethod
    def _mknod(entry: TarEntry, target: str, mode: int) -> None:
        if entry.type == FIFOTYPE:
            os.mkfifo(target, mode)
        else:
            kind = stat.S_IFCHR if entry.type == CHRTYPE else stat.S_IFBLK
            os.mknod(target, mode | kind, os.makedev(entry.devmajor, entry.devminor))


def _link_target(entry: TarEntry) -> str:
    """A hardlink's target, rootfs-relative; the error names the link, not only its target."""
    try:
        return clean_name(entry.linkname)
    except UnsafePathError as exc:
        raise UnsafePathError(
            f"hardlink {entry.name!r} points at {entry.linkname!r}, which climbs out of the root "
            "filesystem",
            hint=exc.hint,
        ) from None


def _mkdirs(path: str, mode: int) -> None:
    """``Path(path).mkdir(mode, parents=True, exist_ok=True)``: missing parents get 0o777."""
    try:
        os.mkdir(path, mode)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if parent == path:
            raise
        _mkdirs(parent, 0o777)
        _mkdirs(path, mode)
    except OSError:
        if not os.path.isdir(path):
            raise
