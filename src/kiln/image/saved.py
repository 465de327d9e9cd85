"""Reading a saved image (OCI layout directory or docker-archive tarball) back as an ``Image``.

Why: `kiln build --no-push --oci-layout-path/--tar-path` saves an image; CI often pushes it in a
later step (`kiln push`). An OCI layout is read with its exact manifest bytes (so the digest stays
the one the build printed). A `kiln build --tar-path` archive is an OCI layout too (``index.json``
and the manifest blob next to ``manifest.json``, as Docker 25's `docker save` writes it), so it
is read the same way, digest unchanged. Only an archive without ``index.json`` (an older
`docker save`) has no manifest to keep: its layers are gzip-compressed (deterministically) and a
Docker v2s2 manifest is made for them. Either way the result is an ``Image`` whose layers open
their own bytes, so it is pushed (or written again) like any other.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

from kiln.errors import ImageFormatError, UsageError
from kiln.image import mediatypes as mt
from kiln.image.config import ImageConfig
from kiln.image.descriptor import Descriptor
from kiln.image.digest import digest_of, is_valid_digest
from kiln.image.image import Image
from kiln.image.layer import BlobLayer
from kiln.image.manifest import Manifest, build_manifest, parse_manifest

_REF_NAME = "org.opencontainers.image.ref.name"
_CHUNK = 1 << 20


class DirectoryBlobs:
    """A ``BlobReader`` over ``<root>/<algorithm>/<hex>`` files (an OCI layout's ``blobs/``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where the blob named ``digest`` is (validated: a digest never names another path)."""
        if not is_valid_digest(digest):
            raise ImageFormatError(f"not a valid digest: {digest!r}")
        algorithm, _, hexdigest = digest.partition(":")
        return self.root / algorithm / hexdigest

    def open(self, digest: str) -> BinaryIO:
        """Open the blob for reading."""
        return self.path(digest).open("rb")


def load_saved(source: Path, scratch: Path, tag: str | None = None) -> Image:
    """The image saved at ``source`` (a layout directory or a tarball); ``scratch`` holds what
    has to be extracted or recompressed, and must outlive the returned image's use."""
    if (source / "index.json").is_file():
        return _from_layout(source, tag)
    if source.is_file():
        layout = _layout_in_archive(source, scratch / "layout")
        if layout is not None:
            return _from_layout(layout, tag)
        return _from_archive(source, scratch / "archive")
    raise UsageError(
        f"{source} is neither an OCI image layout (no index.json) nor a docker-archive tarball"
    )


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _from_layout(layout: Path, tag: str | None) -> Image:
    entries = _json(layout / "index.json").get("manifests") or []
    if tag is not None:
        entries = [e for e in entries if (e.get("annotations") or {}).get(_REF_NAME) == tag]
    if len(entries) != 1:
        raise UsageError(
            f"{layout}: expected exactly one image{f' tagged {tag}' if tag else ''}, "
            f"found {len(entries)}",
            hint="choose one with SOURCE:TAG",
        )
    entry = entries[0]
    if mt.is_index(str(entry.get("mediaType"))):
        raise UsageError(f"{layout}: pushing a multi-platform index is not supported yet")
    blobs = DirectoryBlobs(layout / "blobs")
    try:
        manifest_bytes = blobs.path(str(entry.get("digest"))).read_bytes()
        manifest = parse_manifest(manifest_bytes, entry.get("mediaType"))
        if not isinstance(manifest, Manifest):
            raise ImageFormatError("the manifest is an index")
        config = blobs.path(manifest.config.digest).read_bytes()
        diff_ids = ImageConfig.from_json(config).diff_ids
    except (OSError, ImageFormatError) as exc:
        raise UsageError(f"{layout}: not a readable image: {exc}") from None
    if len(diff_ids) != len(manifest.layers):
        raise UsageError(
            f"{layout}: the manifest lists {len(manifest.layers)} layers but the config "
            f"{len(diff_ids)} diff_ids"
        )
    layers = tuple(
        BlobLayer(d.digest, diff_id, d.size, d.media_type, blobs)
        for d, diff_id in zip(manifest.layers, diff_ids, strict=True)
    )
    return Image(manifest_bytes, manifest.media_type, config, layers)


def _layout_in_archive(path: Path, target: Path) -> Path | None:
    """Extract the OCI layout a tarball holds (``index.json``, ``oci-layout``, ``blobs/``) into
    ``target``; None if it holds none. Nothing else is extracted, and no member is trusted to
    name its own path: only ``blobs/sha256/<64 hex>`` and the two files are written."""
    try:
        with tarfile.open(path) as archive:
            names = set(archive.getnames())
            if "index.json" not in names:
                return None
            (target / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            for member in archive.getmembers():
                if not member.isfile() or not _is_layout_member(member.name):
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                with source, (target / member.name).open("wb") as out:
                    shutil.copyfileobj(source, out, _CHUNK)
    except (OSError, tarfile.TarError) as exc:
        raise UsageError(f"{path} is not a readable image archive: {exc}") from None
    return target


def _is_layout_member(name: str) -> bool:
    if name in ("index.json", "oci-layout"):
        return True
    prefix = "blobs/sha256/"
    return name.startswith(prefix) and is_valid_digest("sha256:" + name[len(prefix) :])


def _from_archive(path: Path, scratch: Path) -> Image:
    blobs = DirectoryBlobs(scratch / "blobs")
    (blobs.root / "sha256").mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(path) as archive:
            entry = json.loads(_member(archive, "manifest.json"))[0]
            config = _member(archive, entry["Config"])
            layers = tuple(_compress(archive, name, blobs) for name in entry["Layers"])
    except (OSError, tarfile.TarError, ValueError, KeyError, IndexError) as exc:
        raise UsageError(f"{path} is not a readable docker-archive: {exc}") from None
    config_descriptor = Descriptor(mt.DOCKER_CONFIG, digest_of(config), len(config))
    manifest = build_manifest(
        config_descriptor,
        [Descriptor(layer.media_type, layer.digest, layer.size) for layer in layers],
        "docker",
    )
    return Image(manifest, mt.DOCKER_MANIFEST, config, layers)


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    stream = archive.extractfile(name)
    if stream is None:
        raise KeyError(name)
    with stream:
        return stream.read()


def _compress(archive: tarfile.TarFile, name: str, blobs: DirectoryBlobs) -> BlobLayer:
    """gzip one layer into ``blobs`` (mtime 0: the same tar always gives the same blob),
    hashing the tar (its diff ID) on the way in and the blob on the way out."""
    source = archive.extractfile(name)
    if source is None:
        raise KeyError(name)
    partial_path = blobs.root / "sha256" / "partial"
    diff_hasher, blob_hasher = hashlib.sha256(), hashlib.sha256()
    with source, partial_path.open("wb") as raw:
        hashing = cast(BinaryIO, _HashingWriter(raw, blob_hasher.update))
        with gzip.GzipFile(fileobj=hashing, mode="wb", mtime=0) as compressed:
            while chunk := source.read(_CHUNK):
                diff_hasher.update(chunk)
                compressed.write(chunk)
    digest = "sha256:" + blob_hasher.hexdigest()
    size = partial_path.stat().st_size
    partial_path.replace(blobs.path(digest))
    return BlobLayer(digest, "sha256:" + diff_hasher.hexdigest(), size, mt.DOCKER_LAYER_GZIP, blobs)


class _HashingWriter:
    """Writes through to ``target``, hashing every byte (the compressed blob's digest)."""

    def __init__(self, target: BinaryIO, update: Callable[[bytes], object]) -> None:
        self._target = target
        self._update = update

    def write(self, data: bytes) -> int:
        self._update(data)
        return self._target.write(data)

    def flush(self) -> None:
        self._target.flush()
