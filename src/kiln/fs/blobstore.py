"""A content-addressed directory of blobs (layers, configs, manifests) named by sha256.

Why: pulled layers, built layers and cached layers all live in one place where the name *is* the
checksum. Writers hash while writing and publish with ``os.replace``, so a reader never sees a
half-written or corrupt blob under a digest name, and two builds writing the same blob at once
both succeed. Layout: ``root/blobs/sha256/<hex>``, the same as an OCI image layout.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from kiln.errors import DigestMismatchError, LayerError, UnsafePathError

_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")


def digest_hex(digest: str, what: str = "digest") -> str:
    """The hex of ``sha256:<hex>``, the one form of name a store turns into a path.

    A malformed digest could smuggle "../" into a path, so it is refused outright; ``what``
    (``digest``, ``diff_id``) names it in the error.
    """
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise UnsafePathError(f"not a sha256 {what}: {digest!r}")
    return match.group(1)


class BlobWriter:
    """Writable file handed out by ``BlobStore.writer``; ``digest``/``size`` valid after close."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes) -> int:
        self._file.write(data)
        self._hash.update(data)
        self.size += len(data)
        return len(data)

    def _finish(self) -> str:
        self._file.close()
        self.digest = "sha256:" + self._hash.hexdigest()
        return self.digest


class BlobStore:
    """Blobs under ``root/blobs/sha256/<hex>``; see the module docstring for the guarantees."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._dir = self.root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        """Where the blob named ``digest`` (``sha256:<hex>``) lives, whether or not it exists."""
        return self._dir / digest_hex(digest)

    def has(self, digest: str) -> bool:
        """True if the blob is stored."""
        return self.path(digest).is_file()

    def open(self, digest: str) -> BinaryIO:
        """Open a stored blob for reading; ``LayerError`` if it is not stored."""
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError as exc:
            raise LayerError(f"blob {digest} is not in the store at {self.root}") from exc

    @contextlib.contextmanager
    def writer(self, expected_digest: str | None = None) -> Iterator[BlobWriter]:
        """Yield a writer; on normal exit verify and publish the blob under its digest.

        With ``expected_digest`` a mismatch raises ``DigestMismatchError`` and nothing is stored.
        If the block raises, the partial blob is discarded.
        """
        if expected_digest is not None:
            self.path(expected_digest)  # validate the form before writing anything
        self._dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=self._dir)
        temp = Path(temp_name)
        file = os.fdopen(fd, "wb")
        blob = BlobWriter(file)
        try:
            yield blob
            actual = blob._finish()
            if expected_digest is not None and actual != expected_digest:
                raise DigestMismatchError(
                    f"blob content hashes to {actual}, expected {expected_digest}",
                    hint="the source is corrupt or was changed while reading; retry the download",
                )
            os.chmod(temp, 0o644)
            os.replace(temp, self.path(actual))
        except BaseException:
            file.close()
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            raise

    def add_file(self, path: Path, digest: str) -> Path:
        """Move ``path``, whose content the caller already hashed to ``digest``, into the store."""
        dest = self.path(digest)
        self._dir.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            fd, temp_name = tempfile.mkstemp(prefix=".tmp-", dir=self._dir)
            os.close(fd)
            shutil.copyfile(path, temp_name)
            os.replace(temp_name, dest)
            os.unlink(path)
        return dest
