"""Pulled layers, each unpacked once into its own directory, ready to be an overlay lower dir.

Why: with the overlay snapshotter a stage's rootfs is a stack of layer directories, so a layer
that several stages or builds use is extracted exactly once (per cache directory) and then only
mounted. Directories are named by the layer's diff_id, the sha256 of its uncompressed tar, which
is checked while unpacking, so a name always means its content.

Format: the layer's own entries, with OCI whiteouts stored the way overlayfs reads them (a
``.wh.NAME`` entry becomes a character device 0/0 at NAME, ``.wh..wh..opq`` becomes the
``overlay.opaque=y`` xattr on its directory). Publishing is unpack-into-a-temporary-directory
then ``rename``, so concurrent builds sharing a cache never see half a layer; the loser of a race
throws its copy away. Nothing is fsynced: a layer directory can always be made again from its
blob, so a crash costs at worst a stale cache entry (delete the cache directory to recover).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import re
import shutil
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from kiln.errors import DigestMismatchError, UnsafePathError

from .overlay import TRUSTED_PREFIX
from .unpack import _Unpacker

_DIFF_ID = re.compile(r"sha256:([0-9a-f]{64})")
_DRAIN = 1 << 20


class LayerStore:
    """Unpacked layers under ``root/<hex of diff_id>``; see the module docstring."""

    def __init__(self, root: Path, *, xattr_prefix: str = TRUSTED_PREFIX) -> None:
        self.root = Path(root)
        self.xattr_prefix = xattr_prefix
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, diff_id: str) -> Path:
        """Where the layer named ``diff_id`` lives once unpacked."""
        match = _DIFF_ID.fullmatch(diff_id)
        if match is None:
            raise UnsafePathError(f"not a sha256 diff_id: {diff_id!r}")
        return self.root / match.group(1)

    def has(self, diff_id: str) -> bool:
        """True if the layer is unpacked already."""
        return self.path(diff_id).is_dir()

    def ensure(self, diff_id: str, opener: Callable[[], BinaryIO]) -> Path:
        """The layer's directory, unpacking the tar ``opener()`` returns if it is not there yet."""
        final = self.path(diff_id)
        if final.is_dir():
            return final
        with self._lock_for(diff_id):
            if final.is_dir():
                return final
            self.root.mkdir(parents=True, exist_ok=True)
            temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
            try:
                os.chmod(temp, 0o755)
                with opener() as stream:
                    checked = _HashingReader(stream)
                    _OverlayUnpacker(temp, self.xattr_prefix).run(checked)  # type: ignore[arg-type]
                    checked.drain()
                if checked.digest != diff_id:
                    raise DigestMismatchError(
                        f"layer unpacks to {checked.digest}, but the image config says {diff_id}",
                        hint="the base image is corrupt; pull it again or rebuild it",
                    )
                _publish(temp, final)
            finally:
                if temp.exists():
                    shutil.rmtree(temp, ignore_errors=True)
        return final

    def _lock_for(self, diff_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(diff_id, threading.Lock())


def _publish(temp: Path, final: Path) -> None:
    try:
        os.rename(temp, final)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
            raise
        # Another build published the same layer first; its copy is as good as ours.


class _HashingReader:
    """Read through, computing the sha256 of everything read (the layer's diff_id)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._hash.update(data)
        return data

    def drain(self) -> None:
        """Read to the end: tar readers stop at the end-of-archive blocks, the digest does not."""
        while self.read(_DRAIN):
            pass

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


class _OverlayUnpacker(_Unpacker):
    """Unpack one layer alone, keeping deletions as overlay whiteouts instead of applying them."""

    def __init__(self, rootfs: Path, xattr_prefix: str) -> None:
        super().__init__(rootfs)
        self.opaque_xattr = xattr_prefix + "opaque"

    def whiteout(self, rel: str) -> None:
        parent_rel, base = posixpath.split(rel)
        _, dprefix, rprefix = self.ensure_dir(parent_rel)
        if rprefix + base in self.written:
            return  # a whiteout never deletes what this same layer wrote
        # Something there already is a whiteout, or a directory the layer has entries in.
        with contextlib.suppress(FileExistsError):
            os.mknod(dprefix + base, stat.S_IFCHR | 0o000, os.makedev(0, 0))

    def opaque(self, dir_rel: str) -> None:
        directory, _, _ = self.ensure_dir(dir_rel)
        os.setxattr(directory, self.opaque_xattr, b"y", follow_symlinks=False)
