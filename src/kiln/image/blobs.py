"""The one thing the writers need from wherever blobs live: a way to open one by digest.

Why a protocol: layers may sit in kiln's blob store, in a registry cache or in a test's dict;
the OCI-layout and docker-archive writers stream from any of them without knowing which.
``kiln.fs.BlobStore`` satisfies it as is.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO, Protocol

from kiln.errors import DigestMismatchError

CHUNK_SIZE = 1 << 20


class BlobReader(Protocol):
    """Opens blobs by digest for reading; the caller closes the returned stream."""

    def open(self, digest: str) -> BinaryIO:
        """Open the blob named ``digest`` (``sha256:<hex>``) for binary reading."""
        ...


def copy_verified(source: BinaryIO, dest: BinaryIO, digest: str) -> int:
    """Copy ``source`` to ``dest`` in chunks, checking it hashes to ``digest``; returns bytes.

    Raises ``DigestMismatchError`` after the copy when the content does not match, so a corrupt
    blob store is reported rather than written into an image.
    """
    algorithm, _, expected = digest.partition(":")
    hasher = hashlib.new(algorithm)
    total = 0
    while chunk := source.read(CHUNK_SIZE):
        hasher.update(chunk)
        dest.write(chunk)
        total += len(chunk)
    if hasher.hexdigest() != expected:
        raise DigestMismatchError(
            f"blob {digest} has digest {algorithm}:{hasher.hexdigest()}",
            hint="the blob store is corrupt; delete the blob and pull or build it again",
        )
    return total
