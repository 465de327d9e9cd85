"""History entries: the per-step record (``docker history``) kept in an image config.

Why a value type: each build step appends exactly one entry, and whether it produced a layer
(``empty_layer``) must line up with ``rootfs.diff_ids`` or tools like ``docker history`` and
registries' UIs show the wrong command next to a layer. Serialisation follows Docker: false and
missing fields are omitted, not written as ``false``/``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kiln.errors import ImageFormatError


@dataclass(frozen=True)
class HistoryEntry:
    """One ``history`` item of an image config."""

    created: str | None
    created_by: str | None
    empty_layer: bool = False
    comment: str | None = None
    author: str | None = None

    @classmethod
    def from_dict(cls, data: Any) -> HistoryEntry:
        """Read one history object; unknown keys are ignored (Docker does the same)."""
        if not isinstance(data, Mapping):
            raise ImageFormatError(f"history entry must be an object, not {data!r}")
        return cls(
            created=_optional_str(data, "created"),
            created_by=_optional_str(data, "created_by"),
            empty_layer=bool(data.get("empty_layer", False)),
            comment=_optional_str(data, "comment"),
            author=_optional_str(data, "author"),
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object in Docker's field order, without false or None fields."""
        out: dict[str, Any] = {}
        if self.created is not None:
            out["created"] = self.created
        if self.author is not None:
            out["author"] = self.author
        if self.created_by is not None:
            out["created_by"] = self.created_by
        if self.comment is not None:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ImageFormatError(f"history field {key!r} must be a string, not {value!r}")
    return value
