"""Go duration strings (``1m30s``, ``500ms``, ``1.5h``) to integer nanoseconds.

Why it exists: HEALTHCHECK flags are Go durations and the image config stores nanoseconds;
Docker parses them with ``time.ParseDuration``, so kiln accepts exactly that grammar.
"""

from __future__ import annotations

import re
from decimal import Decimal

__all__ = ["DurationError", "parse_duration"]

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_PART = re.compile(r"(\d+\.?\d*|\.\d+)([^\d.]*)")
_MAX = 2**63 - 1


class DurationError(ValueError):
    """The text is not a Go duration."""


def parse_duration(text: str) -> int:
    """Nanoseconds in ``text``; raises DurationError for anything Go would reject."""
    body = text
    sign = 1
    if body[:1] in "+-" and body:
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        raise DurationError(f'time: invalid duration "{text}"')
    total = Decimal(0)
    pos = 0
    while pos < len(body):
        match = _PART.match(body, pos)
        if match is None:
            raise DurationError(f'time: invalid duration "{text}"')
        if not match.group(2):
            raise DurationError(f'time: missing unit in duration "{text}"')
        unit = _UNITS.get(match.group(2))
        if unit is None:
            raise DurationError(f'time: unknown unit "{match.group(2)}" in duration "{text}"')
        total += Decimal(match.group(1)) * unit
        pos = match.end()
    nanos = int(total)
    if nanos > _MAX:
        raise DurationError(f'time: invalid duration "{text}"')
    return sign * nanos
