"""Apply a tar header's ownership, mode, extended attributes and times to an extracted path.

Why the order matters (and lives in one place): ``chown`` clears setuid/setgid bits and
``security.capability``, so ownership goes first, then xattrs, then the mode. Times go last
because every other change touches ctime/mtime bookkeeping. Each function takes either a path
(never followed if it is a symlink) or an open file descriptor, so a regular file being unpacked
gets its metadata without a single path lookup.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .tarreader import TarEntry

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


def apply_metadata(
    target: str | int, entry: TarEntry, warn: WarnOnce, *, chmod: bool = True
) -> None:
    """Set owner, xattrs and mode of ``target`` (a path or a descriptor) from ``entry``.

    ``chmod=False`` for symlinks: their mode means nothing.
    """
    try:
        if isinstance(target, int):
            os.chown(target, entry.uid, entry.gid)
        else:
            os.chown(target, entry.uid, entry.gid, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _UNSUPPORTED:
            raise
        warn("chown", f"cannot set file ownership ({exc.strerror}); files keep the current owner")
    if entry.pax_headers:
        apply_xattrs(target, entry, warn)
    if chmod:
        os.chmod(target, entry.mode & 0o7777)


def has_xattrs(entry: TarEntry) -> bool:
    """True if ``entry`` carries extended attributes (as ``SCHILY.xattr.*`` PAX records)."""
    return bool(entry.pax_headers) and any(
        key.startswith(XATTR_PAX_PREFIX) for key in entry.pax_headers
    )


def apply_xattrs(target: str | int, entry: TarEntry, warn: WarnOnce) -> None:
    """Set the extended attributes ``entry`` carries on ``target`` (a path or a descriptor)."""
    for key, value in sorted(entry.pax_headers.items()):
        if not key.startswith(XATTR_PAX_PREFIX):
            continue
        name = key[len(XATTR_PAX_PREFIX) :]
        raw = value.encode("utf-8", "surrogateescape")
        try:
            if isinstance(target, int):
                os.setxattr(target, name, raw)
            else:
                os.setxattr(target, name, raw, follow_symlinks=False)
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
            warn(f"xattr:{name}", f"cannot set xattr {name} ({exc.strerror}); skipped")


def mtime_ns(entry: TarEntry) -> int:
    """The header's mtime in nanoseconds (PAX mtimes carry fractions)."""
    return round(float(entry.mtime) * 1_000_000_000)


def set_times(target: str | int, entry: TarEntry) -> None:
    """Set atime and mtime of ``target`` (a path, not followed, or a descriptor) to the mtime."""
    ns = mtime_ns(entry)
    if isinstance(target, int):
        os.utime(target, ns=(ns, ns))
    else:
        os.utime(target, ns=(ns, ns), follow_symlinks=False)
