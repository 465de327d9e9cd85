"""Writing an image into an OCI image-layout directory (``oci:PATH:TAG`` for skopeo, umoci).

Why: a layout directory is the registry-free way to hand an image to other tools, and the way
kiln's own tests feed images to ``umoci`` and ``skopeo``. The writer creates the layout or adds
to an existing one: blobs already present are skipped (content addressing makes that safe),
``index.json`` keeps other images and re-points a tag that already existed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln.errors import ImageFormatError
from kiln.image import mediatypes as mt
from kiln.image.atomic import atomic_write_bytes, atomic_writer
from kiln.image.blobs import copy_verified
from kiln.image.config import ImageConfig
from kiln.image.descriptor import Descriptor
from kiln.image.digest import digest_hex, digest_of
from kiln.image.image import Image
from kiln.image.layer import Layer
from kiln.image.manifest import Manifest, parse_manifest

REF_NAME = "org.opencontainers.image.ref.name"
LAYOUT_VERSION = b'{"imageLayoutVersion":"1.0.0"}'


def write_oci_layout(
    path: Path, image: Image, tags: Sequence[str] = (), *, tag: str | None = None
) -> Descriptor:
    """Write ``image`` into the layout at ``path`` and return its ``index.json`` descriptor.

    ``tags`` (and/or ``tag``) become ``org.opencontainers.image.ref.name`` annotations, one
    index entry per tag; with no tag the manifest is listed without a name. Every layer but
    foreign ones is copied from the layer itself (``Layer.open_compressed``) and verified
    against its digest.

    The manifest bytes are written exactly as given, so the layout holds the image whose digest
    the caller computed (and pushes under it). A Docker schema-2 manifest stays one: converting
    it would silently change the digest. skopeo (1.9) and umoci (0.4) only read OCI manifests
    from a layout, so a caller who wants them to read it builds the image with OCI media types.
    """
    parsed = parse_manifest(image.manifest, image.manifest_media_type)
    if not isinstance(parsed, Manifest):
        raise ValueError("write_oci_layout writes a single image; got an index")
    if parsed.config.digest != image.config_digest:
        raise ImageFormatError(
            f"manifest names config {parsed.config.digest} but the config bytes are "
            f"{image.config_digest}"
        )
    blob_dir = path / "blobs" / "sha256"
    blob_dir.mkdir(parents=True, exist_ok=True)
    if not (path / "oci-layout").exists():
        atomic_write_bytes(path / "oci-layout", LAYOUT_VERSION)
    for layer in image.layers:
        if not mt.is_foreign_layer(layer.media_type):
            _put_layer(blob_dir, layer)
    _put_bytes(blob_dir, image.config)
    _put_bytes(blob_dir, image.manifest)

    platform = ImageConfig.from_json(image.config).platform
    entry = Descriptor(
        media_type=parsed.media_type,
        digest=image.digest,
        size=len(image.manifest),
        platform=platform if platform.os and platform.architecture else None,
    )
    names = [*tags, *([tag] if tag else [])]
    _update_index(path / "index.json", entry, names)
    return entry


def _put_bytes(blob_dir: Path, data: bytes) -> None:
    target = blob_dir / digest_hex(digest_of(data))
    if not target.exists():
        atomic_write_bytes(target, data)


def _put_layer(blob_dir: Path, layer: Layer) -> None:
    target = blob_dir / digest_hex(layer.digest)
    if target.exists():
        return
    with layer.open_compressed() as source, atomic_writer(target) as dest:
        copy_verified(source, dest, layer.digest)


def _update_index(index_path: Path, entry: Descriptor, names: Sequence[str]) -> None:
    doc = _read_index(index_path)
    kept: list[Any] = []
    for item in doc["manifests"]:
        name = (item.get("annotations") or {}).get(REF_NAME)
        if name in names or (name is None and not names and item.get("digest") == entry.digest):
            continue
        kept.append(item)
    if names:
        for name in names:
            kept.append(dataclasses.replace(entry, annotations={REF_NAME: name}).to_dict())
    else:
        kept.append(entry.to_dict())
    doc["manifests"] = kept
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    atomic_write_bytes(index_path, body)


def _read_index(index_path: Path) -> dict[str, Any]:
    if not index_path.exists():
        return {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": []}
    try:
        doc = json.loads(index_path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageFormatError(f"{index_path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("manifests", []), list):
        raise ImageFormatError(f"{index_path} is not an OCI image index")
    doc.setdefault("manifests", [])
    return doc
