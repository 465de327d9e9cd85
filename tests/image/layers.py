"""Test helpers: real layer blobs made with tarfile+gzip, and an in-memory BlobReader."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import BinaryIO

from kiln.image import (
    BlobLayer,
    BlobReader,
    Descriptor,
    HistoryEntry,
    Image,
    ImageConfig,
    build_manifest,
    digest_of,
    mediatypes,
)


@dataclass(frozen=True)
class Layer:
    """One layer: the compressed blob and its two digests."""

    blob: bytes
    digest: str
    diff_id: str
    tar: bytes


def make_layer(files: Mapping[str, bytes], *, compress: bool = True) -> Layer:
    """A layer tar holding ``files`` (parent directories are created), gzip-compressed."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs: set[str] = set()
        for name, data in sorted(files.items()):
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                directory = "/".join(parts[:i])
                if directory not in dirs:
                    info = tarfile.TarInfo(directory)
                    info.type = tarfile.DIRTYPE
                    info.mode = 0o755
                    tar.addfile(info)
                    dirs.add(directory)
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    plain = raw.getvalue()
    blob = gzip.compress(plain, mtime=0) if compress else plain
    return Layer(blob, digest_of(blob), digest_of(plain), plain)


@dataclass
class DictBlobs:
    """A BlobReader over a dict; counts opens so tests can see skipped copies."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    opened: list[str] = field(default_factory=list)

    def add(self, layer: Layer) -> None:
        self.blobs[layer.digest] = layer.blob

    def open(self, digest: str) -> BinaryIO:
        self.opened.append(digest)
        return io.BytesIO(self.blobs[digest])


@dataclass(frozen=True)
class SampleImage:
    """A complete small image: config bytes, manifest bytes and its layers."""

    config: bytes
    manifest: bytes
    layers: tuple[Layer, ...]
    fmt: str = "oci"

    def image(self, blobs: BlobReader | None = None) -> Image:
        """The ``kiln.image.Image``, its layers read from ``blobs`` (default: their own bytes)."""
        if blobs is None:
            own = DictBlobs()
            for layer in self.layers:
                own.add(layer)
            blobs = own
        media_type = mediatypes.layer_media_type(self.fmt, "gzip")
        layers = tuple(
            BlobLayer(layer.digest, layer.diff_id, len(layer.blob), media_type, blobs)
            for layer in self.layers
        )
        return Image(self.manifest, mediatypes.manifest_media_type(self.fmt), self.config, layers)


def make_image(layers: tuple[Layer, ...], fmt: str = "oci") -> SampleImage:
    """Config (with history and a CMD) and manifest for ``layers`` in format ``fmt``."""
    config = ImageConfig.empty()
    for i, layer in enumerate(layers):
        entry = HistoryEntry("2024-01-02T03:04:05Z", f"COPY step {i}")
        config = config.with_layer(layer.diff_id, entry)
    config = config.with_cmd(["/bin/true"]).with_created("2024-01-02T03:04:05Z")
    config_bytes = config.to_json()
    config_desc = Descriptor(
        mediatypes.config_media_type(fmt), digest_of(config_bytes), len(config_bytes)
    )
    layer_descs = [
        Descriptor(mediatypes.layer_media_type(fmt, "gzip"), layer.digest, len(layer.blob))
        for layer in layers
    ]
    return SampleImage(config_bytes, build_manifest(config_desc, layer_descs, fmt), layers, fmt)
