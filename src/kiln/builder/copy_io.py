"""The system calls under a COPY: directory descriptors kept at hand, a file copied through them.

Why descriptors: a syscall on a path N components deep walks all N again, so copying a tree N
levels deep by paths costs N^2 path steps in the kernel (and N^2 bytes of path strings in
Python); relative to the parent's descriptor each costs one.
"""

from __future__ import annotations

import errno
import os
import posixpath
from pathlib import Path

from kiln.closeable import Closeable

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIRECTORY = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_DIR_FDS = 64


class DirFds(Closeable):
    """``O_PATH`` descriptors of real directories under ``root`` (``""`` for `/`), the 64 most
    recent kept, each opened from its parent's when that is at hand."""

    def __init__(self, root: str) -> None:
        self._root = root
        self._fds: dict[str, int] = {}  # real directory -> descriptor, most recent last

    def get(self, real: str) -> int:
        """The descriptor of the real (rootfs-relative, `/`-led) directory ``real``."""
        fd = self._fds.pop(real, None)
        if fd is None:
            head, name = posixpath.split(real)
            parent_fd = self._fds.get(head) if name else None
            if parent_fd is not None:
                fd = os.open(name, _DIRECTORY, dir_fd=parent_fd)
            else:
                fd = os.open(self._root + real if name else self._root or "/", _DIRECTORY)
            if len(self._fds) >= _MAX_DIR_FDS:
                os.close(self._fds.pop(next(iter(self._fds))))
        self._fds[real] = fd
        return fd

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


def copy_file_at(
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
            copy_xattrs(source, target)
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


def copy_xattrs(src: Path | int, target: Path | int) -> None:
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
