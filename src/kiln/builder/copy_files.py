"""COPY and ADD: put files from the context (or another stage) into the rootfs, Docker's way.

Why here and not in fs: the rules are Dockerfile rules (trailing slash means directory, several
sources need a directory destination, a directory source copies its contents, context files become
root-owned unless --chown), while fs only offers safe path joining and layer writing. Every path
written is reported back so the layer is written from exactly those paths, with no scan.

``defer_files``: when nothing after this COPY reads the rootfs (the last file step of the target
stage), a new regular file is not created at all; it goes into ``deferred`` and the layer writer
reads it from its source (``kiln.fs.SourceFile``). Creating files is most of a big COPY's cost.
Directories, links and files that replace an existing entry are still written for real, and a
later entry of the same COPY that meets a deferred path makes that file real first.
"""

from __future__ import annotations

import errno
import os
import posixpath
import shutil
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiln.builder.chmod import parse_chmod
from kiln.builder.effects import CopyEffect
from kiln.context import BuildContext, IgnoreMatcher, SourceMatch, resolve_sources, walk_source
from kiln.context.archive_source import archive_members, is_archive
from kiln.context.remote_source import download, is_url
from kiln.errors import BuildError, DockerfileError
from kiln.fs import ProtectedPaths, SourceFile, lookup_chown, secure_join

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DIR_FDS = 64


@dataclass(frozen=True)
class Ownership:
    """Who owns copied entries: a fixed uid/gid (context default 0:0) or the source's own ids."""

    uid: int | None
    gid: int | None


class CopyJob:
    """One COPY/ADD effect applied to one rootfs; collects the rootfs-relative paths it wrote."""

    def __init__(
        self,
        rootfs: Path,
        effect: CopyEffect,
        filename: str,
        *,
        keep_owner: bool = False,
        defer_files: bool = False,
        protected: ProtectedPaths | None = None,
    ) -> None:
        self.rootfs = rootfs
        self.protected = protected  # inplace: never written, also not through a symlink
        self.effect = effect
        self.filename = filename
        self.written: list[str] = []
        self.defer_files = defer_files
        self.deferred: dict[str, SourceFile] = {}  # rootfs-relative path -> its source
        self._parents_touched: set[Path] = set()
        self._dirs: dict[str, str] = {}  # ensure_dir's answers: absolute -> real directory
        # Without a trailing slash, so that ``_root + "/abs/path"`` is right also for the
        # inplace isolation, whose rootfs is ``/`` ("" here; "//x" is not "/x" to pathlib).
        self._root = os.path.abspath(rootfs).rstrip("/")
        self._fds: dict[str, int] = {}  # real directory -> O_PATH descriptor (a few, LRU)
        self._inodes: dict[tuple[int, int], Path] = {}
        if effect.chown:
            uid, gid = lookup_chown(rootfs, effect.chown)
            self.owner = Ownership(uid, gid)
        elif keep_owner:
            self.owner = Ownership(None, None)
        else:
            self.owner = Ownership(0, 0)
        self.mode = parse_chmod(effect.chmod) if effect.chmod else None

    def _error(self, message: str) -> DockerfileError:
        return DockerfileError(message, file=self.filename, line=self.effect.line)

    def _guard(self, target: Path, what: str) -> None:
        """Refuse, before writing, a resolved ``target`` that is a protected path (inplace)."""
        if self.protected is None:
            return
        rel = target.relative_to(self.rootfs).as_posix()
        if rel != "." and self.protected.covers(rel):
            refused = self.protected.refuse(what, rel)
            raise DockerfileError(
                refused.message, file=self.filename, line=self.effect.line, hint=refused.hint
            )

    def destination(self, count: int) -> tuple[str, bool]:
        """The absolute destination and whether it names a directory."""
        dest = self.effect.dest
        absolute = posixpath.join(self.effect.workdir, dest)
        wants_dir = dest.endswith("/") or dest in (".", "..") or dest.endswith("/.")
        if count > 1 and not wants_dir:
            if self._is_existing_dir(absolute):
                return absolute, True
            raise self._error(
                "When using COPY with more than one source file, "
                "the destination must be a directory and end with a /"
            )
        return absolute, wants_dir or self._is_existing_dir(absolute)

    def _is_existing_dir(self, absolute: str) -> bool:
        return secure_join(self.rootfs, absolute).is_dir()

    def copy_from(self, source: BuildContext) -> list[str]:
        """Copy the effect's sources from a context or stage root; return the paths written."""
        try:
            return self._copy_from(source)
        finally:
            self._close_fds()

    def _copy_from(self, source: BuildContext) -> list[str]:
        effect = self.effect
        urls = [s for s in effect.sources if effect.is_add and is_url(s)]
        patterns = [s for s in effect.sources if s not in urls]
        matches = resolve_sources(source, patterns) if patterns else []
        excluded = IgnoreMatcher.from_patterns(effect.exclude) if effect.exclude else None
        if excluded is not None:
            matches = [m for m in matches if not excluded.matches(m.rel_path)]
        dest, is_dir = self.destination(len(matches) + len(urls))
        for url in urls:
            self.copy_url(url, dest, is_dir)
        for match in matches:
            if effect.parents:
                self.copy_match(source, match, posixpath.join(dest, _parents_path(match)), excluded)
            elif match.is_dir:
                self.copy_match(source, match, dest, excluded)
            elif self.unpacks(match.abs_path):
                self.extract(match.abs_path, dest)
            else:
                name = posixpath.basename(match.rel_path.rstrip("/"))
                self.copy_entry(match.abs_path, posixpath.join(dest, name) if is_dir else dest)
        return self.written

    def copy_match(
        self, source: BuildContext, match: SourceMatch, target: str, excluded: IgnoreMatcher | None
    ) -> None:
        """A directory's contents into target (a file source: the file itself to target)."""
        if not match.is_dir:
            self.copy_entry(match.abs_path, target)
            return
        target_dir = self.ensure_dir(target)
        skipped: list[str] = []
        for rel, abs_path in walk_source(source, match):
            if excluded is not None and (
                excluded.matches(rel) or any(rel.startswith(s + "/") for s in skipped)
            ):
                skipped.append(rel)
                continue
            self.copy_entry(abs_path, posixpath.join(target_dir, rel))

    def unpacks(self, path: Path) -> bool:
        """ADD unpacks a local tar archive (any compression) unless --unpack=false."""
        return self.effect.is_add and self.effect.unpack is not False and is_archive(path)

    def extract(self, archive: Path, dest: str) -> None:
        """Unpack archive into the directory dest, like `tar -x` (owners kept unless --chown)."""
        base = self.ensure_dir(dest)
        with archive_members(archive) as members:
            for member, content in members:
                name = posixpath.normpath(member.name.lstrip("/"))
                if name in (".", "") or name.startswith("../"):
                    continue
                try:
                    self._extract_member(member, content, base, name)
                except (FileNotFoundError, NotADirectoryError) as exc:
                    # e.g. a member under a symlink to a missing directory
                    where = Path(str(exc.filename))
                    if where.is_relative_to(self.rootfs):
                        where = Path("/", where.relative_to(self.rootfs))
                    raise self._error(
                        f"ADD cannot unpack {member.name!r} from {archive.name}: "
                        f"{exc.strerror}: {where}"
                    ) from None

    def _extract_member(
        self, member: tarfile.TarInfo, content: BinaryIO | None, base: str, name: str
    ) -> None:
        """One archive member to ``base``/``name``, like `tar -x`."""
        absolute = posixpath.join(base, name)
        if member.isdir():
            target = secure_join(self.rootfs, self.ensure_dir(absolute, dangling=False))
        elif member.issym() or member.islnk() or content is not None:
            parent = self.ensure_dir(posixpath.dirname(absolute), dangling=False)
            if member.islnk():
                linked = secure_join(
                    self.rootfs, posixpath.join(base, posixpath.normpath(member.linkname))
                )
                self._guard(linked, f"ADD hard link {member.name!r}")
                if not linked.exists() or linked.is_dir():
                    missing = "a directory" if linked.exists() else "missing"
                    raise self._error(
                        f"ADD cannot unpack hard link {member.name!r}: "
                        f"it points at {member.linkname!r}, which is {missing}"
                    )
            target = self._replaceable(posixpath.join(parent, posixpath.basename(name)))
            if member.issym():
                os.symlink(member.linkname, target)
            elif member.islnk():
                os.link(linked, target)
                return  # shares the inode already recorded
            else:
                assert content is not None
                with target.open("wb") as out:
                    shutil.copyfileobj(content, out)
        else:
            return  # devices and fifos are not unpacked by ADD either
        self._chown(target, member.uid, member.gid)
        if not member.issym():
            os.chmod(target, member.mode & 0o7777)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
        self._record(target)

    def copy_url(self, url: str, dest: str, is_dir: bool) -> None:
        """ADD http(s)://...: the file as served, mode 0600, dated by Last-Modified."""
        parent_dir = dest if is_dir else posixpath.dirname(dest) or "/"
        parent = self.ensure_dir(parent_dir)
        partial = secure_join(self.rootfs, parent) / ".kiln-download"
        self._guard(partial, f"ADD destination {parent}")
        fetched = download(url, partial, self.effect.checksum)
        name = fetched.name if is_dir else posixpath.basename(dest)
        target = self._replaceable(posixpath.join(parent, name))
        os.replace(partial, target)
        self._chown(target, 0, 0)
        os.chmod(target, self.mode(0o600, False) if self.mode else 0o600)
        if fetched.mtime is not None:
            os.utime(target, (fetched.mtime, fetched.mtime))
        self._record(target)

    def copy_heredocs(self) -> list[str]:
        """COPY <<EOF /path: each heredoc becomes a file named after its delimiter."""
        dest, is_dir = self.destination(len(self.effect.heredocs))
        for name, content in self.effect.heredocs:
            target = posixpath.join(dest, name) if is_dir else dest
            parent = self.ensure_dir(posixpath.dirname(target) or "/")
            path = self._replaceable(posixpath.join(parent, posixpath.basename(target)))
            path.write_text(content)
            self._finish(path, 0o644)
        return self.written

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
            self._guard(candidate, f"COPY/ADD destination {absolute}")
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
                    self._chown(directory, 0, 0)
                    self._record(directory)
            self._dirs["/" + "/".join(parts[: index + 1])] = real
        return real

    def _child(self, real_parent: str, name: str) -> Path:
        """``name`` inside the real directory ``real_parent``, a symlink there followed safely."""
        path = Path(f"{self._root}{real_parent.rstrip('/')}/{name}")
        if path.is_symlink():
            return secure_join(self.rootfs, posixpath.join(real_parent, name))
        return path

    def _replaceable(self, absolute: str) -> Path:
        """Clear a non-directory entry in the way of ``absolute`` (its parent is real)."""
        return self._slot(absolute)[0]

    def _slot(self, absolute: str) -> tuple[Path, bool]:
        """``_replaceable``, plus whether the target was free (nothing there to clear).

        ``absolute``'s parent is a real directory (from ``ensure_dir``), so it needs no
        resolving; the last component is never followed.
        """
        target = Path(self._root + absolute)
        self._guard(target, f"COPY/ADD destination {absolute}")
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
            self._guard(target, f"COPY/ADD destination {absolute}")
            self._undefer(target)
            if not target.is_dir():
                if os.path.lexists(target):
                    target.unlink()
                    self._dirs.clear()  # a resolution may have passed through that link
                target.mkdir()
            # BuildKit: a directory *inside* the copy takes the source's owner and mode even
            # when it exists; only the destination directory itself keeps its own.
            self._finish(target, stat.S_IMODE(st.st_mode), st)
            # Its entries come next: they find their parent resolved.
            real = "/" + target.relative_to(self.rootfs).as_posix()
            self._dirs[requested] = self._dirs[absolute] = "/" if real == "/." else real
            return
        target, free = self._slot(absolute)
        first = self._inodes.get((st.st_dev, st.st_ino)) if st.st_nlink > 1 else None
        if first is not None:
            os.link(first, target)  # hard links inside one copy stay hard links
            self._record(target)
            return
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
            self._chown(target, st.st_uid, st.st_gid)
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
            self._record(target)
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
        dir_fd = self._dir_fd(parent)
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
            _copy_file_at(src, dir_fd, name, uid, gid, self._file_mode(st), times)
        self.written.append(rel)
        return True

    def _file_mode(self, st: os.stat_result) -> int:
        mode = stat.S_IMODE(st.st_mode)
        return self.mode(mode, False) if self.mode else mode

    def _dir_fd(self, real: str) -> int:
        """An ``O_PATH`` descriptor of the real directory ``real``, opened from its parent's
        when that is at hand; the 64 most recent are kept."""
        fd = self._fds.pop(real, None)
        if fd is None:
            head, name = posixpath.split(real)
            parent_fd = self._fds.get(head) if name else None
            flags = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
            if parent_fd is not None:
                fd = os.open(name, flags, dir_fd=parent_fd)
            else:
                fd = os.open(self._root + real if name else self._root or "/", flags)
            if len(self._fds) >= _MAX_DIR_FDS:
                os.close(self._fds.pop(next(iter(self._fds))))
        self._fds[real] = fd  # most recent last
        return fd

    def _close_fds(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])

    def _copy_file(self, src: Path, target: Path, st: os.stat_result) -> None:
        shutil.copyfile(src, target, follow_symlinks=False)
        self._finish(target, stat.S_IMODE(st.st_mode), st)
        _copy_xattrs(src, target)  # after chown, which would clear security.capability
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

    def _finish(self, target: Path, mode: int, st: os.stat_result | None = None) -> None:
        self._chown(target, st.st_uid if st else 0, st.st_gid if st else 0)
        final_mode = self.mode(mode, target.is_dir()) if self.mode else mode
        os.chmod(target, final_mode)
        if st is not None:
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        self._record(target)

    def _chown(self, target: Path, src_uid: int, src_gid: int) -> None:
        uid = self.owner.uid if self.owner.uid is not None else src_uid
        gid = self.owner.gid if self.owner.gid is not None else src_gid
        os.lchown(target, uid, gid)

    def _record(self, target: Path) -> None:
        self.written.append(target.relative_to(self.rootfs).as_posix())


def _copy_file_at(
    src: Path, dir_fd: int, name: str, uid: int, gid: int, mode: int, times: tuple[int, int]
) -> None:
    """Copy the regular file ``src`` to ``name`` (new) in ``dir_fd``: data, owner, mode,
    times, then extended attributes (after chown, which would clear security.capability)."""
    source = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        target = os.open(name, _CREATE, 0o600, dir_fd=dir_fd)
        try:
            _copy_data(source, target)
            os.fchown(target, uid, gid)
            os.fchmod(target, mode)
            os.utime(target, ns=times)
            _copy_xattrs(source, target)
        finally:
            os.close(target)
    finally:
        os.close(source)


def _copy_data(source: int, target: int) -> None:
    """All of ``source`` into ``target`` in the kernel (``sendfile``), else through a buffer."""
    try:
        while os.sendfile(target, source, None, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise
    os.lseek(source, 0, os.SEEK_SET)
    os.lseek(target, 0, os.SEEK_SET)
    os.ftruncate(target, 0)
    while chunk := os.read(source, 1 << 20):
        os.write(target, chunk)


def _parents_path(match: SourceMatch) -> str:
    """`COPY --parents`: the source keeps its path below the context (or stage) root."""
    return "" if match.rel_path == "." else match.rel_path


def _copy_xattrs(src: Path | int, target: Path | int) -> None:
    """Extended attributes travel with the file (file capabilities: security.capability).

    ``src`` and ``target`` are regular files (paths or descriptors), never symlinks.
    """
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(target, name, os.getxattr(src, name))
        except OSError:
            continue  # a filesystem without that namespace: Docker skips it too
