"""Instructions as plain JSON-ready dictionaries (for ``kiln parse`` and golden tests).

Why it exists: a stable, explicit dump format is how users (and tests) see what the parser
understood. It is derived from the dataclass fields, so a new field appears without edits here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from kiln.dockerfile.instructions import Instruction

__all__ = ["instruction_to_dict"]

_HEADER = ("keyword", "line", "end_line", "original", "flags")
_OMITTED = frozenset({"source", "raw_flags"})


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def instruction_to_dict(instruction: Instruction) -> dict[str, Any]:
    """``{"keyword", "line", "end_line", "original", "flags", "fields": {...}}``.

    ``fields`` holds the keyword-specific values; ``from_`` is spelled ``from``.
    """
    result: dict[str, Any] = {name: _plain(getattr(instruction, name)) for name in _HEADER}
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(instruction):
        if f.name in _HEADER or f.name in _OMITTED:
            continue
        fields[f.name.rstrip("_")] = _plain(getattr(instruction, f.name))
    result["fields"] = fields
    return result
