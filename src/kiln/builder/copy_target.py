"""Writing entries into a rootfs for COPY/ADD: directories resolved safely, entries replaced,
owners and modes applied, every path written recorded, new files deferred where allowed.

Why apart from ``copy_files``: that module holds the Dockerfile's rules (what a source and a
destination mean); this one what writing one entry means, wherever it came from, and how to do
it fast (a deep tree costs one path step per entry, see ``ensure_dir`` and ``_copy_entry_at``)
and safely (never through a symlink out of the rootfs, never onto a protected path).
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kiln.builder.copy_io import DirFds, copy_file_at, copy_xattrs
from kiln.closeable import Closeable
from kiln.errors import BuildError, DockerfileError
from kiln.fs import ProtectedPaths, SourceFile, secure_join

#: ``--chmod``'s mode for an entry: (source mode, is a directory) -> mode.
ModeFunction = Callable[[int, bool], int]


@dataclass(frozen=True)
class Ownership:
    """Who owns copied entries: a fixed uid/gid (context default 0:0) or the source's own ids."""

    uid: int | None
    gid: int | None


class CopyTarget(Closeable):
    """One COPY/ADD's writes into one rootfs; collects the rootfs-relative paths it wrote.

    ``filename`` and ``line`` locate a refusal (a protected path) in the Dockerfile.
    """

    def __init__(
        self,
        rootfs: Path,
        owner: Ownership,
        mode: ModeFunction | None,
        filename: str,
        line: int,
        *,
        defer_files: bool = False,
        protected: ProtectedPaths | None = None,
    ) -> None:
        self.rootfs = rootfs
        self.owner = owner
        self.mode = mode
        self.filename = filename
        self.line = line
        self.protected = protected  # inplace: never written, also not through a symlink
        self.written: list[str] = []
        self.defer_files = defer_files
        self.deferred: dict[str, SourceFile] = {}  # rootfs-relative path -> its source
        self._parents_touched: set[Path] = set()
        self._dirs: dict[str, str] = {}  # ensure_dir's answers: absolute -> real directory
        # Without a trailing slash, so that ``_root + "/abs/path"`` is right also for the
        # inplace isolation, whose rootfs is ``/`` ("" here; "//x" is not "/x" to pathlib).
        self._root = os.path.abspath(rootfs).rstrip("/")
        self._fds = DirFds(self._root)
        self._inodes: dict[tuple[int, int], Path] = {}

    def close(self) -> None:
        """Close the directory descriptors the copy kept open."""
        self._fds.close()

    def guard(self, target: Path, what: str) -> None:
        """Refuse, before writing, a resolved ``target`` that is a protected path (inplace)."""
        if self.protected is None:
            return
        rel = target.relative_to(self.rootfs).as_posix()
        if rel != "." and self.protected.covers(rel):
            refused = self.protected.refuse(what, rel)
            raise DockerfileError(
                refused.message, file=self.filename, line=self.line, hint=refused.hint
            )

    def ensure_dir(self, absolute: str, *, dangling: bool = True) -> str:
        """Create missing directories along absolute (never following links out of rootfs).

        Returns the directory's real path (rootfs-relative, with a leading ``/``).
        """
        known = self._dirs.get(absolute)
        if known is not None:
            return known  # a COPY never replaces a directory, so it still is one
        self._dirs[absolute] = real = self._ensure_dir(absolute, dangling)
        return real

    def _ensure_dir(self, absolute: str, dangling: bool) -> str:
        """Resolve component by component from the deepest directory resolved before.

        Each new component costs one ``lstat`` of its real path; only a symlink met on the way
        is resolved in full (``secure_join``). Resolving every path from the root instead made
        a COPY of a tree N levels deep cost N^3 path steps.
        """
        parts = [p for p in absolute.split("/") if p not in ("", ".")]
        start = len(parts)
        while start and "/" + "/".join(parts[:start]) not in self._dirs:
            start -= 1
        real = self._dirs["/" + "/".join(parts[:start])] if start else "/"
        for index in range(start, len(parts)):
            part = parts[index]
            if part == "..":
                real = posixpath.dirname(real)
                continue
            candidate = self._child(real, part)
            real = "/" + candidate.relative_to(self.rootfs).as_posix()
            if real == "/.":
                real = "/"
            self.guard(candidate, f"COPY/ADD destination {absolute}")
            self._undefer(candidate)
            if not candidate.is_dir():
                if os.path.lexists(candidate):
                    raise BuildError(
                        f"cannot copy to {absolute}: {real} exists and is not a directory"
                    )
                # Through a symlink to a missing directory COPY creates it, as BuildKit's
                # MkdirAll in the root does; `tar -x` of an ADD archive does not
                # (``dangling=False``): an error.
                missing = [candidate]
                while dangling and not missing[-1].parent.exists():
                    missing.append(missing[-1].parent)
                for directory in reversed(missing):
                    directory.mkdir(mode=0o755)
                    self.chown(directory, 0, 0)
                    self.record(directory)
            self._dirs["/" + "/".join(parts[: index + 1])] = real
        return real

    def _child(self, real_parent: str, name: str) -> Path:
        """``name`` inside the real directory ``real_parent``, a symlink there followed safely."""
        path = Path(f"{self._root}{real_parent.rstrip('/')}/{name}")
        if path.is_symlink():
            return secure_join(self.rootfs, posixpath.join(real_parent, name))
        return path

    def replaceable(self, absolute: str) -> Path:
        """Clear a non-directory entry in the way of ``absolute`` (its parent is real)."""
        return self._slot(absolute)[0]

    def _slot(self, absolute: str) -> tuple[Path, bool]:
        """``replaceable``, plus whether the target was free (nothing there to clear).

        ``absolute``'s parent is a real directory (from ``ensure_dir``), so it needs no
        resolving; the last component is never followed.
        """
        target = Path(self._root + absolute)
        self.guard(target, f"COPY/ADD destination {absolute}")
        self._undefer(target)
        if target.is_symlink():
            target.unlink()
            self._dirs.clear()  # a resolution may have passed through that link
            return target, False
        if target.exists() and not target.is_dir():
            target.unlink()
            return target, False
        return target, not target.exists()

    def copy_entry(self, src: Path, absolute: str) -> None:
        """Copy one file, link or directory (not its children) to absolute."""
        st = os.lstat(src)
        requested = absolute
        parent = self.ensure_dir(posixpath.dirname(absolute) or "/")
        absolute = posixpath.join(parent, posixpath.basename(absolute))
        if self._copy_entry_at(src, st, requested, parent, posixpath.basename(absolute)):
            return
        if stat.S_ISDIR(st.st_mode):
            target = self._child(parent, posixpath.basename(absolute))
            self.guard(target, f"COPY/ADD destination {absolute}")
            self._undefer(target)
            if not target.is_dir():
                if os.path.lexists(target):
                    target.unlink()
                    self._dirs.clear()  # a resolution may have passed through that link
                target.mkdir()
            # BuildKit: a directory *inside* the copy takes the source's owner and mode even
            # when it exists; only the destination directory itself keeps its own.
            self.finish(target, stat.S_IMODE(st.st_mode), st)
            # Its entries come next: they find their parent resolved.
            real = "/" + target.relative_to(self.rootfs).as_posix()
            self._dirs[requested] = self._dirs[absolute] = "/" if real == "/." else real
            return
        target, free = self._slot(absolute)
        first = self._inodes.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
        if first is not None:
            os.link(first, target)  # hard links inside one copy stay hard links
            self.record(target)
            return
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
            self.chown(target, st.st_uid, st.st_gid)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            self.record(target)
            return
        if not stat.S_ISREG(st.st_mode):
            raise BuildError(f"cannot copy {src}: not a regular file, directory or symlink")
        if self.defer_files and st.st_nlink == 1 and free:
            self._defer(src, target, st)
            return
        self._copy_file(src, target, st)

    def _copy_entry_at(
        self, src: Path, st: os.stat_result, requested: str, parent: str, name: str
    ) -> bool:
        """``copy_entry`` through a descriptor of the real directory ``parent``; False if the
        case is rare enough for the path-based code (a link or directory in the way, a
        hardlink, a deferred file, deferring this one).

        Why descriptors: a syscall on a path N components deep walks all N again, so copying
        a tree N levels deep by paths costs N^2 path steps in the kernel (and N^2 bytes of
        path strings in Python); relative to the parent's descriptor each costs one.
        """
        absolute = posixpath.join(parent, name)
        rel = absolute[1:]
        if not name or (self.deferred and rel in self.deferred):
            return False
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFREG and (
            st.st_nlink > 1 or self.defer_files
        ):  # hardlink groups and deferring keep their own code
            return False
        if kind not in (stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK):
            return False
        dir_fd = self._fds.get(parent)
        try:
            there = stat.S_IFMT(os.lstat(name, dir_fd=dir_fd).st_mode)
        except FileNotFoundError:
            there = 0
        if there == stat.S_IFLNK or (there == stat.S_IFDIR and kind != stat.S_IFDIR):
            return False
        if there and there != stat.S_IFDIR:
            os.unlink(name, dir_fd=dir_fd)
        uid = self.owner.uid if self.owner.uid is not None else st.st_uid
        gid = self.owner.gid if self.owner.gid is not None else st.st_gid
        times = (st.st_atime_ns, st.st_mtime_ns)
        if kind == stat.S_IFDIR:
            if there != stat.S_IFDIR:
                os.mkdir(name, 0o755, dir_fd=dir_fd)
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
            mode = stat.S_IMODE(st.st_mode)
            os.chmod(name, self.mode(mode, True) if self.mode else mode, dir_fd=dir_fd)
            os.utime(name, ns=times, dir_fd=dir_fd, follow_symlinks=False)
            self._dirs[requested] = self._dirs[absolute] = absolute
        elif kind == stat.S_IFLNK:
            os.symlink(os.readlink(src), name, dir_fd=dir_fd)
            os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
            os.utime(name, ns=times, dir_fd=dir_fd, follow_symlinks=False)
        else:
            copy_file_at(src, dir_fd, name, uid, gid, self._file_mode(st), times)
        self.written.append(rel)
        return True

    def _file_mode(self, st: os.stat_result) -> int:
        mode = stat.S_IMODE(st.st_mode)
        return self.mode(mode, False) if self.mode else mode

    def _copy_file(self, src: Path, target: Path, st: os.stat_result) -> None:
        shutil.copyfile(src, target, follow_symlinks=False)
        self.finish(target, stat.S_IMODE(st.st_mode), st)
        copy_xattrs(src, target)  # after chown, which would clear security.capability
        if st.st_nlink > 1:
            self._inodes[(st.st_dev, st.st_ino)] = target

    def _defer(self, src: Path, target: Path, st: os.stat_result) -> None:
        """Leave ``target`` uncreated; the layer takes it from ``src`` (see module docstring)."""
        mode = stat.S_IMODE(st.st_mode)
        uid = self.owner.uid if self.owner.uid is not None else st.st_uid
        gid = self.owner.gid if self.owner.gid is not None else st.st_gid
        rel = target.relative_to(self.rootfs).as_posix()
        final_mode = self.mode(mode, False) if self.mode else mode
        self.deferred[rel] = SourceFile(src, final_mode, uid, gid)
        parent = target.parent
        if parent not in self._parents_touched:
            # A real file would have copied its parent up into an overlay's upper directory
            # (and the layer carries that parent); an unchanged chown does the same.
            self._parents_touched.add(parent)
            parent_st = os.lstat(parent)
            os.lchown(parent, parent_st.st_uid, parent_st.st_gid)

    def _undefer(self, target: Path) -> None:
        """Something else of this COPY lands on ``target``: create the deferred file first."""
        if not self.deferred:
            return
        given = self.deferred.pop(target.relative_to(self.rootfs).as_posix(), None)
        if given is not None:
            self._copy_file(given.source, target, os.lstat(given.source))

    def finish(self, target: Path, mode: int, st: os.stat_result | None = None) -> None:
        self.chown(target, st.st_uid if st else 0, st.st_gid if st else 0)
        final_mode = self.mode(mode, target.is_dir()) if self.mode else mode
        os.chmod(target, final_mode)
        if st is not None:
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.record(target)

    def chown(self, target: Path, src_uid: int, src_gid: int) -> None:
        uid = self.owner.uid if self.owner.uid is not None else src_uid
        gid = self.owner.gid if self.owner.gid is not None else src_gid
        os.lchown(target, uid, gid)

    def record(self, target: Path) -> None:
        self.written.append(target.relative_to(self.rootfs).as_posix())
