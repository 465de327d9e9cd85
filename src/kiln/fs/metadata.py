"""Apply a tar header's ownership, mode, extended attributes and times to an extracted path.

Why the order matters (and lives in one place): ``chown`` clears setuid/setgid bits and
``security.capability``, so ownership goes first, then xattrs, then the mode. Times go last
because every other change touches ctime/mtime bookkeeping.
"""

from __future__ import annotations

import errno
import logging
import os
import tarfile
from pathlib import Path

log = logging.getLogger("kiln.fs")

XATTR_PAX_PREFIX = "SCHILY.xattr."

#: Errors meaning "this filesystem or this process cannot do that" rather than "bad input".
_UNSUPPORTED = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EACCES}


class WarnOnce:
    """Log each distinct warning once per layer; unprivileged unpacks would otherwise flood."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, key: str, message: str) -> None:
        if key not in self._seen:
            self._seen.add(key)
            log.warning("%s", message)


def apply_metadata(path: Path, member: tarfile.TarInfo, warn: WarnOnce) -> None:
    """Set owner, xattrs and mode of ``path`` from ``member`` (symlinks: owner and xattrs only)."""
    try:
        os.lchown(path, member.uid, member.gid)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        warn("chown", f"cannot set file ownership ({exc.strerror}); files keep the current owner")
    _apply_xattrs(path, member, warn)
    if not member.issym():
        os.chmod(path, member.mode & 0o7777)


def _apply_xattrs(path: Path, member: tarfile.TarInfo, warn: WarnOnce) -> None:
    for key, value in sorted(member.pax_headers.items()):
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX) :]
        raw = value.encode("utf-8", "surrogateescape")
        try:
            os.setxattr(path, name, raw, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            warn(f"xattr:{name}", f"cannot set xattr {name} ({exc.strerror}); skipped")


def set_times(path: Path, member: tarfile.TarInfo) -> None:
    """Set atime and mtime of ``path`` (not following a symlink) to the header's mtime."""
    mtime_ns = round(float(member.mtime) * 1_000_000_000)
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)
