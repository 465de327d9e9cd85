"""Descriptors: typed pointers (media type, digest, size) from one image document to another.

Why a value type: manifests, indexes, layouts and registry pushes all pass descriptors around;
validating them once on the way in (``from_dict``) means the rest of kiln can trust digest and
size, and ``to_dict`` writes them in the OCI spec's field order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kiln.errors import ImageFormatError
from kiln.image.digest import is_valid_digest
from kiln.image.platform import Platform


@dataclass(frozen=True)
class Descriptor:
    """A content descriptor as it appears in manifests (``config``, ``layers``) and indexes."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not is_valid_digest(self.digest):
            raise ImageFormatError(f"descriptor has an invalid digest: {self.digest!r}")
        if self.size < 0:
            raise ImageFormatError(f"descriptor {self.digest} has a negative size")
        if self.annotations is not None:
            frozen = MappingProxyType(dict(self.annotations))
            object.__setattr__(self, "annotations", frozen)

    def __hash__(self) -> int:
        notes = tuple(sorted(self.annotations.items())) if self.annotations else None
        return hash((self.media_type, self.digest, self.size, notes, self.platform, self.urls))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Descriptor):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    @classmethod
    def from_dict(cls, data: Any) -> Descriptor:
        """Validate and read a descriptor object from a parsed JSON document."""
        if not isinstance(data, Mapping):
            raise ImageFormatError(f"descriptor must be an object, not {data!r}")
        media_type, digest, size = data.get("mediaType"), data.get("digest"), data.get("size")
        if not isinstance(media_type, str) or not isinstance(digest, str):
            raise ImageFormatError(f"descriptor needs string mediaType and digest: {data!r}")
        if not isinstance(size, int) or isinstance(size, bool):
            raise ImageFormatError(f"descriptor {digest} needs an integer size")
        annotations = data.get("annotations")
        if annotations is not None and not isinstance(annotations, Mapping):
            raise ImageFormatError(f"descriptor {digest} annotations must be an object")
        platform = data.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations={str(k): str(v) for k, v in annotations.items()} if annotations else None,
            platform=Platform.from_dict(platform) if platform is not None else None,
            urls=tuple(str(u) for u in data.get("urls") or ()),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, in the OCI spec's field order, omitting empty optional fields."""
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform is not None:
            out["platform"] = self.platform.to_dict()
        return out
