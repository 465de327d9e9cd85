"""A layer whose blob is in kiln's blob store: pulled, built this build, or cached.

Why here: once its blob is in the store, where a layer came from no longer matters, so one
type serves base-image layers, layers the build wrote and (with a shared ``--cache-dir``)
layers of earlier builds. It satisfies ``kiln.image.Layer`` by shape (``fs`` does not import
``image``), and decompresses with ``open_layer`` (zlib-ng, or ``zstd`` for zstd blobs), the
fast path unpacking relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import BinaryIO

from .blobstore import BlobStore
from .layerstream import open_layer


@dataclass(frozen=True)
class StoredLayer:
    """One layer: its blob's digest and size, its diff ID and media type, and the store holding
    the blob. Layers compare by what they are, not by which store object holds them."""

    digest: str
    diff_id: str
    size: int
    media_type: str
    store: BlobStore = field(compare=False, repr=False)

    def open_compressed(self) -> BinaryIO:
        """The blob as stored."""
        return self.store.open(self.digest)

    def open_uncompressed(self) -> BinaryIO:
        """The layer's tar (gzip, zstd or plain blobs alike)."""
        return open_layer(self.store.path(self.digest))
