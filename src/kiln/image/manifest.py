"""Image manifests and indexes: parsing what registries serve, building what kiln pushes.

Why one module: a manifest and an index are the two shapes a registry can answer a tag with, and
telling them apart (by the given media type, the document's ``mediaType``, or its structure when
both are missing, as some OCI manifests are) is the first step of every pull.

``build_manifest`` writes compact JSON in the spec's field order with a ``mediaType`` field for
both formats (the OCI spec recommends it; registries use it to validate the Content-Type).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kiln.errors import ImageFormatError
from kiln.image import mediatypes as mt
from kiln.image.descriptor import Descriptor
from kiln.image.digest import digest_of
from kiln.image.platform import Platform, compatibility_rank

__all__ = [
    "Index",
    "Manifest",
    "build_index",
    "build_manifest",
    "digest_of",
    "parse_manifest",
]


@dataclass(frozen=True)
class Manifest:
    """A single-platform image manifest (Docker schema 2 or OCI)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] | None = field(default=None, hash=False)

    @property
    def format(self) -> str:
        """``"docker"`` or ``"oci"``."""
        return mt.image_format(self.media_type)

    def to_json(self) -> bytes:
        """Serialise again (same bytes as ``build_manifest`` for the same content)."""
        return build_manifest(self.config, self.layers, self.format, self.annotations)


@dataclass(frozen=True)
class Index:
    """A multi-platform index (OCI image index or Docker manifest list)."""

    media_type: str
    manifests: tuple[Descriptor, ...]
    annotations: Mapping[str, str] | None = field(default=None, hash=False)

    def select(self, platform: Platform) -> Descriptor | None:
        """The manifest for ``platform``: exact match first, then the newest compatible variant.

        Matching normalises architecture aliases and default variants (``arm64`` means ``v8``,
        ``arm`` means ``v7``). Entries without a platform (attestations) are never chosen. On a
        tie the earlier entry wins, as in Docker.
        """
        best: tuple[int, Descriptor] | None = None
        for desc in self.manifests:
            if desc.platform is None or not mt.is_manifest(desc.media_type):
                continue
            rank = compatibility_rank(platform, desc.platform)
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, desc)
        return best[1] if best else None

    def platforms(self) -> tuple[Platform, ...]:
        """The platforms this index offers, in order (for error messages)."""
        return tuple(d.platform for d in self.manifests if d.platform is not None)


def build_manifest(
    config: Descriptor,
    layers: Sequence[Descriptor],
    fmt: str = "docker",
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """Serialise a schema-2 manifest of format ``"docker"`` or ``"oci"``.

    Docker manifests cannot carry annotations; passing some with ``fmt="docker"`` is an error.
    """
    if fmt == "docker" and annotations:
        raise ValueError("Docker schema 2 manifests cannot carry annotations; use fmt='oci'")
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.manifest_media_type(fmt),
        "config": config.to_dict(),
        "layers": [layer.to_dict() for layer in layers],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return _dump(doc)


def build_index(
    manifests: Sequence[Descriptor],
    fmt: str = "oci",
    annotations: Mapping[str, str] | None = None,
) -> bytes:
    """Serialise a multi-platform index (``"oci"``) or manifest list (``"docker"``)."""
    if fmt == "docker" and annotations:
        raise ValueError("Docker manifest lists cannot carry annotations; use fmt='oci'")
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.index_media_type(fmt),
        "manifests": [m.to_dict() for m in manifests],
    }
    if annotations:
        doc["annotations"] = dict(annotations)
    return _dump(doc)


def parse_manifest(data: bytes, media_type: str | None = None) -> Manifest | Index:
    """Parse a manifest or index.

    The kind comes from ``media_type`` when it names one (e.g. a registry's Content-Type), else
    from the document's ``mediaType``, else from its shape. Schema 1 is refused with a hint.
    """
    doc = _load(data)
    kind = _resolve_media_type(doc, media_type)
    if kind in mt.SCHEMA1_TYPES:
        raise ImageFormatError(
            "Docker schema 1 manifests are not supported",
            hint="re-push the image with a current Docker or skopeo to convert it to schema 2",
        )
    if doc.get("schemaVersion") != 2:
        raise ImageFormatError(f"unsupported manifest schemaVersion {doc.get('schemaVersion')!r}")
    annotations = _annotations(doc)
    if mt.is_index(kind):
        return Index(kind, _descriptors(doc, "manifests"), annotations)
    if mt.is_manifest(kind):
        config = Descriptor.from_dict(doc.get("config"))
        return Manifest(kind, config, _descriptors(doc, "layers"), annotations)
    raise ImageFormatError(f"not an image manifest or index: media type {kind!r}")


def _resolve_media_type(doc: Mapping[str, Any], given: str | None) -> str:
    known = mt.INDEX_TYPES | mt.MANIFEST_TYPES | mt.SCHEMA1_TYPES
    if given:
        given = given.split(";", 1)[0].strip()
        if given in known:
            return given
    declared = doc.get("mediaType")
    if isinstance(declared, str) and declared:
        return declared
    if doc.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_MANIFEST
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    raise ImageFormatError("cannot tell whether the document is a manifest or an index")


def _load(data: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ImageFormatError(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ImageFormatError("manifest must be a JSON object")
    return doc


def _descriptors(doc: Mapping[str, Any], key: str) -> tuple[Descriptor, ...]:
    items = doc.get(key)
    if items is None:
        items = []
    if not isinstance(items, list):
        raise ImageFormatError(f"manifest field {key!r} must be a list")
    return tuple(Descriptor.from_dict(item) for item in items)


def _annotations(doc: Mapping[str, Any]) -> Mapping[str, str] | None:
    notes = doc.get("annotations")
    if notes is None:
        return None
    if not isinstance(notes, Mapping):
        raise ImageFormatError("manifest annotations must be an object")
    return MappingProxyType({str(k): str(v) for k, v in notes.items()})


def _dump(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
