"""Where each directory of a rootfs really is, resolved once per layer: the unpacker's hot path.

Why a cache: base images hold 10^5 small files, and per-file Python overhead is what unpacking
costs. So the unpacker works on ``str`` paths and remembers each directory it resolved (entry
name -> real directory), so ``secure_join`` and ``mkdir`` run once per directory, not once per
file. That cache stays exact because a resolution only passes through directories and symlinks
that exist: creating something where nothing was cannot change it, and every removal of a
directory or a symlink (replaced by a later entry, a whiteout, an opaque directory) empties it
(``forget_dirs``).

The same goes for the group and mode a new file gets by itself (``gid_for_new_files``): known
from the process's fsuid, fsgid and umask (``FileCreator``) and the directory's group, setgid bit
and default ACL, so a file created right needs no ``fchown``/``fchmod``.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from kiln.errors import LayerError

from .protected import ProtectedPaths
from .securejoin import secure_join_str

_ACL_DEFAULT = "system.posix_acl_default"
_NO_ACL = frozenset((errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP))
#: ``gid_for_new_files`` when the group or mode of a new file cannot be known beforehand
UNKNOWN = -1

#: (real path, real path + "/", rootfs-relative real path + "/" or "" for the root)
RealDir = tuple[str, str, str]


class FileCreator:
    """Who files are created as: fsuid, fsgid and umask, read once per layer from ``/proc``."""

    def __init__(self, uid: int, gid: int, umask: int) -> None:
        self.uid = uid
        self.gid = gid
        #: mode bits that creating a file cannot give by itself (so they need an fchmod)
        self.chmod_bits = umask | 0o7000

    @classmethod
    def current(cls) -> FileCreator | None:
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


class LayerDirectories:
    """The rootfs one layer is unpacked onto, and the directories resolved in it so far.

    The base of the unpacker (``unpack._Unpacker``): the removal, entry and dispatch parts
    build on it, and the overlay unpacker (``layerstore``) overrides ``ensure_dir``.
    """

    def __init__(self, rootfs: Path | str, protected: ProtectedPaths | None = None) -> None:
        self.root = os.path.abspath(rootfs)
        self.protected = protected
        self.prefix = self.root if self.root.endswith("/") else self.root + "/"
        self.removed_any = False  # did this layer remove a directory or symlink?
        self.creator = FileCreator.current()
        self._dirs: dict[str, RealDir] = {}  # clean_name of a directory -> where it really is
        self._new_gid: dict[str, int] = {}  # real dir + "/" -> gid new files get (or UNKNOWN)

    def ensure_dir(self, rel: str, name: str | None = None) -> RealDir:
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

    def lookup_dir(self, rel: str) -> RealDir:
        """Like ``ensure_dir`` without creating anything (the result may not exist)."""
        cached = self._dirs.get(rel)
        return cached if cached is not None else self._dir(secure_join_str(self.root, rel))

    def _dir(self, real: str) -> RealDir:
        if real == self.root:
            return self.root, self.prefix, ""
        return real, real + "/", real[len(self.prefix) :] + "/"

    def made_dir(self, rel: str, real: str) -> RealDir:
        """Remember that the entry ``rel`` made the new, empty directory ``real``."""
        found = self._dir(real)
        self._dirs[rel] = found
        self._new_gid.pop(found[1], None)
        return found

    def forget_dirs(self) -> None:
        """A directory or symlink was removed: resolutions made before may be stale."""
        self.removed_any = True
        self._dirs.clear()
        self._new_gid.clear()

    def gid_for_new_files(self, dprefix: str) -> int:
        """The group a file created in directory ``dprefix`` gets, or UNKNOWN.

        UNKNOWN too if a default ACL there (rather than the umask) decides its mode.
        """
        gid = self._new_gid.get(dprefix)
        if gid is not None:
            return gid
        gid = UNKNOWN
        creator = self.creator
        if creator is not None:
            st = os.stat(dprefix)
            if st.st_mode & stat.S_ISGID:
                gid = st.st_gid
            elif st.st_gid == creator.gid:  # whether or not the mount says "grpid"
                gid = creator.gid
            if gid != UNKNOWN:
                try:
                    os.getxattr(dprefix, _ACL_DEFAULT)
                    gid = UNKNOWN
                except OSError as exc:
                    if exc.errno not in _NO_ACL:
                        gid = UNKNOWN
        self._new_gid[dprefix] = gid
        return gid

    def root_changed(self) -> None:
        """The root directory's owner or mode changed: what new files there get may too."""
        self._new_gid.pop(self.prefix, None)


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
