"""Turn files in a rootfs into deterministic tar headers.

Why hand-built headers instead of ``TarFile.gettarinfo``: that helper fills in user and group
names from the *host's* passwd, which makes layers depend on the machine that built them. Here
every header carries numeric ids, empty names, clamped whole-second mtimes and a fixed set of
xattrs, so the same tree always yields the same bytes.
"""

from __future__ import annotations

import os
import posixpath
import stat
import tarfile
from dataclasses import dataclass, field

from kiln.errors import LayerError

from .metadata import XATTR_PAX_PREFIX
from .names import WHITEOUT_PREFIX

#: Extended attributes worth carrying into an image. SELinux labels and the like describe the
#: build host, not the image, so they stay out.
_XATTR_PREFIXES = ("user.",)
_XATTR_NAMES = frozenset({"security.capability"})
_OVERLAY_USER_PREFIX = "user.overlay."


@dataclass
class HardlinkTable:
    """Remembers the first tar name written for each (device, inode) with several links."""

    first_name: dict[tuple[int, int], str] = field(default_factory=dict)

    def link_for(self, name: str, st: os.stat_result) -> str | None:
        """Name of an earlier entry for the same inode, or None (and remember this one)."""
        if stat.S_ISDIR(st.st_mode) or st.st_nlink < 2:
            return None
        key = (st.st_dev, st.st_ino)
        earlier = self.first_name.get(key)
        if earlier is None:
            self.first_name[key] = name
        return earlier


def header_for(
    path: str,
    name: str,
    st: os.stat_result,
    *,
    hardlinks: HardlinkTable,
    source_date_epoch: int | None,
) -> tarfile.TarInfo | None:
    """Build the tar header for the file at ``path`` (already ``lstat``-ed) named ``name``.

    Returns None for sockets, which a tar cannot carry (Docker drops them the same way).
    """
    if stat.S_ISSOCK(st.st_mode):
        return None
    if posixpath.basename(name).startswith(WHITEOUT_PREFIX):
        raise LayerError(
            f"cannot put {name!r} in a layer: names starting with {WHITEOUT_PREFIX!r} are "
            "whiteout markers and would delete files when the image is unpacked",
            hint="rename or remove the file in the build step that created it",
        )
    info = tarfile.TarInfo(name)
    info.mode = stat.S_IMODE(st.st_mode)
    info.uid, info.gid = st.st_uid, st.st_gid
    info.uname = info.gname = ""
    mtime = int(st.st_mtime)
    info.mtime = mtime if source_date_epoch is None else min(mtime, source_date_epoch)
    info.size = 0
    linked = hardlinks.link_for(name, st)
    mode = st.st_mode
    if linked is not None:
        info.type, info.linkname = tarfile.LNKTYPE, linked
    elif stat.S_ISREG(mode):
        info.type, info.size = tarfile.REGTYPE, st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        raise LayerError(f"cannot put {name!r} in a layer: unknown file type {mode:o}")
    info.pax_headers = _xattr_records(path)
    return info


def whiteout_header(name: str) -> tarfile.TarInfo:
    """An empty regular-file header: the OCI marker deleting a path from lower layers."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.REGTYPE, 0, 0
    info.uname = info.gname = ""
    return info


def carried_xattrs(path: str) -> dict[str, bytes]:
    """The extended attributes of ``path`` that belong in an image (name -> raw value)."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}  # filesystem without xattr support: nothing to carry
    values: dict[str, bytes] = {}
    for name in names:
        if name not in _XATTR_NAMES and not name.startswith(_XATTR_PREFIXES):
            continue
        if name.startswith(_OVERLAY_USER_PREFIX):
            continue  # a rootless overlay's own bookkeeping, not the file's
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return values


def _xattr_records(path: str) -> dict[str, str]:
    return {
        XATTR_PAX_PREFIX + name: value.decode("utf-8", "surrogateescape")
        for name, value in sorted(carried_xattrs(path).items())
    }
