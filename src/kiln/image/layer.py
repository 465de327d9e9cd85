"""The one layer protocol: what every part of kiln needs to know about a layer, and no more.

Why a protocol: a layer pulled from a registry, one a step just wrote, one found in a cache and
one read back from a saved image are the same thing to whoever consumes it. Pushing needs the
compressed blob (digest, size, bytes), the image config needs the diff ID, unpacking and
``docker save`` need the uncompressed tar. go-containerregistry's ``v1.Layer`` draws the same
line. Where the bytes live is the implementation's business: ``BlobLayer`` reads them through
any ``BlobReader`` (a saved layout, a test's dict); ``kiln.fs.StoredLayer`` from kiln's blob
store with the fast decompressors. Callers never branch on which one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from kiln.image.blobs import BlobReader
from kiln.image.uncompressed import open_uncompressed


class Layer(Protocol):
    """One layer of an image: its blob (compressed) and its diff ID (uncompressed)."""

    @property
    def digest(self) -> str:
        """The digest of the blob as stored and pushed (compressed)."""
        ...

    @property
    def diff_id(self) -> str:
        """The digest of the uncompressed tar (what the config's ``rootfs.diff_ids`` lists)."""
        ...

    @property
    def size(self) -> int:
        """The size of the blob in bytes."""
        ...

    @property
    def media_type(self) -> str:
        """The layer media type the blob was stored or pulled with."""
        ...

    def open_compressed(self) -> BinaryIO:
        """The blob's bytes as stored (the caller closes the stream)."""
        ...

    def open_uncompressed(self) -> BinaryIO:
        """The layer's tar, decompressed (the caller closes the stream)."""
        ...


@dataclass(frozen=True)
class BlobLayer:
    """A layer whose blob some ``BlobReader`` opens by digest (gzip or plain; zstd refused
    for ``open_uncompressed``). Layers compare by what they are, not where they are read from.
    """

    digest: str
    diff_id: str
    size: int
    media_type: str
    blobs: BlobReader = field(compare=False, repr=False)

    def open_compressed(self) -> BinaryIO:
        """The blob, as the reader holds it."""
        return self.blobs.open(self.digest)

    def open_uncompressed(self) -> BinaryIO:
        """The tar inside the blob."""
        return open_uncompressed(self.open_compressed(), self.digest)
