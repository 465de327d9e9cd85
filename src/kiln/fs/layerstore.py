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

Layers that depend on what lies below them: applied to a whole root filesystem (the walk
snapshotter, containerd's applier on a mounted snapshot, umoci), an entry ``a/f`` whose layer
has no ``a`` of its own goes wherever ``a`` leads in the layers below: through a symlink
``a -> DIR`` into ``DIR/f``, into a directory keeping that directory's owner and mode, or to an
error if ``a`` is a file. A layer unpacked alone cannot know that; it makes ``a`` a directory,
which over a lower symlink would hide the link. So unpacking alone records whether the layer
needed any such implicit directory (or hardlinked a file it does not hold itself), in a
``<hex>.info`` file beside the directory. Such a layer is not used alone; ``ensure_on`` applies
it with the ordinary unpacker onto an overlay mount of the layers below it and keeps the upper
directory, named by the chain ID (the OCI image spec's digest of the diff_ids up to this layer),
since its content depends on the whole chain. Layers made by Docker, BuildKit and kiln carry
their parent directories, so this slower path is rare.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import posixpath
import stat
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from kiln.errors import DigestMismatchError

from .blobstore import digest_hex
from .names import clean_name
from .overlay import TRUSTED_PREFIX, OverlayRootfs
from .securejoin import secure_join_str
from .tarreader import TarEntry
from .trees import remove_tree
from .unpack import _Unpacker, apply_layer

_DRAIN = 1 << 20
_ALONE = b"alone\n"  # the .info of a layer whose directory is right whatever lies below it
_NEEDS_LOWERS = b"needs-lowers\n"


def chain_id(parent: str | None, diff_id: str) -> str:
    """The OCI chain ID of a layer over the chain ``parent`` (None for the bottom layer)."""
    if parent is None:
        return diff_id
    return "sha256:" + hashlib.sha256(f"{parent} {diff_id}".encode()).hexdigest()


class LayerStore:
    """Unpacked layers under ``root/<hex of diff_id>``; see the module docstring."""

    def __init__(self, root: Path, *, xattr_prefix: str = TRUSTED_PREFIX) -> None:
        self.root = Path(root)
        self.xattr_prefix = xattr_prefix
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, diff_id: str) -> Path:
        """Where the layer named ``diff_id`` lives once unpacked."""
        return self.root / digest_hex(diff_id, "diff_id")

    def has(self, diff_id: str) -> bool:
        """True if the layer is unpacked already."""
        return self.path(diff_id).is_dir()

    def ensure(self, diff_id: str, opener: Callable[[], BinaryIO]) -> Path:
        """The layer's directory, unpacking the tar ``opener()`` returns if it is not there yet.

        This is the layer alone; ``ensure_on`` is what a stack of layers should use.
        """
        final = self.path(diff_id)

        def unpack(temp: Path) -> Path:
            os.chmod(temp, 0o755)
            unpacker = _OverlayUnpacker(temp, self.xattr_prefix)
            with opener() as stream:
                checked = _HashingReader(stream)
                unpacker.run(checked)  # type: ignore[arg-type]
                checked.drain()
            _check(checked.digest, diff_id)
            info = _NEEDS_LOWERS if unpacker.needs_lowers else _ALONE
            _write_atomically(final.with_name(final.name + ".info"), info)
            return temp

        return self._made_once(final, diff_id, unpack)

    def alone(self, diff_id: str) -> bool:
        """True if the layer's own directory is right over any layers (module docstring).

        False also for a directory unpacked by an older kiln, which kept no ``.info``.
        """
        info = self.path(diff_id)
        try:
            return info.with_name(info.name + ".info").read_bytes() == _ALONE
        except FileNotFoundError:
            return False

    def ensure_on(
        self, diff_id: str, opener: Callable[[], BinaryIO], lowers: Sequence[Path], chain: str
    ) -> Path:
        """The directory to stack over ``lowers`` (bottom-first) for the layer ``diff_id``.

        ``chain`` is the chain ID of the layers ``lowers`` hold plus this one. Returns the
        layer's own directory when that is right whatever lies below, else the layer applied
        onto an overlay of ``lowers``, kept under ``chains/<hex of chain>``.
        """
        own = self.ensure(diff_id, opener)
        if self.alone(diff_id):
            return own
        final = self.path(chain).parent / "chains" / self.path(chain).name

        def apply(temp: Path) -> Path:
            with OverlayRootfs(temp / "mount", lowers) as overlay, opener() as stream:
                checked = _HashingReader(stream)
                apply_layer(checked, overlay.rootfs)  # type: ignore[arg-type]
                checked.drain()
            _check(checked.digest, diff_id)
            return overlay.upper

        return self._made_once(final, chain, apply)

    def _made_once(self, final: Path, key: str, make: Callable[[Path], Path]) -> Path:
        """``final``, made unless it is there: ``make`` fills a fresh directory beside it and
        returns what becomes ``final``. One thread per ``key`` at a time; the others then find
        it made. A failed ``make`` leaves nothing behind."""
        if final.is_dir():
            return final
        with self._lock_for(key):
            if final.is_dir():
                return final
            final.parent.mkdir(parents=True, exist_ok=True)
            temp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
            try:
                _publish(make(temp), final)
            finally:
                if temp.exists():
                    remove_tree(temp, ignore_errors=True)
        return final

    def _lock_for(self, diff_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(diff_id, threading.Lock())


def _check(digest: str, diff_id: str) -> None:
    if digest != diff_id:
        raise DigestMismatchError(
            f"layer unpacks to {digest}, but the image config says {diff_id}",
            hint="the base image is corrupt; pull it again or rebuild it",
        )


def _write_atomically(path: Path, data: bytes) -> None:
    temp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
    temp.write_bytes(data)
    os.replace(temp, path)


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
        #: whether this layer needed something of the layers below it (module docstring)
        self.needs_lowers = False

    def ensure_dir(self, rel: str, name: str | None = None) -> tuple[str, str, str]:
        if (
            not self.needs_lowers
            and rel
            and rel not in self._dirs
            and not os.path.isdir(secure_join_str(self.root, rel))
        ):
            self.needs_lowers = True  # an implicit directory: what is there below?
        return super().ensure_dir(rel, name)

    def hardlink(self, entry: TarEntry, target: str) -> None:
        link_parent, link_base = posixpath.split(clean_name(entry.linkname))
        if link_base and not os.path.lexists(self.lookup_dir(link_parent)[1] + link_base):
            self.needs_lowers = True  # a file of a layer below; only a stack can link it
            return
        super().hardlink(entry, target)

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
