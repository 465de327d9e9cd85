"""Why a step missed the cache, in words: which named input differs from the last build's.

Why compare with the last inputs at the same place: a key is a digest and says nothing by
itself; the inputs recorded the last time this step (same Dockerfile, stage and step number)
ran name exactly what changed since, which is what a user asks when a build is slow again.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.builder.cache.copy_sources import FILE_INPUT

#: At most this many changed inputs are named in one reason.
_NAMED = 3


def miss_reason(
    previous: Mapping[str, str] | None,
    current: Mapping[str, str],
    *,
    first_step: bool,
    where: str,
) -> str:
    """Why a step with ``current`` inputs missed; ``previous`` are the last recorded there.

    ``where``: the instruction and its place (``COPY src/ at Dockerfile:7``), named with a
    changed file.
    """
    if previous is None:
        return "no cache entry"
    if previous.get("parent") != current.get("parent"):
        return "base image changed" if first_step else "earlier step missed"
    changed = [
        _describe(name, previous, current, where)
        for name in sorted(set(previous) | set(current), key=_order)
        if previous.get(name) != current.get(name)
    ]
    if not changed:
        return "no cache entry"
    more = len(changed) - _NAMED
    return ", ".join(changed[:_NAMED]) + (f" and {more} more" if more > 0 else "")


def _order(name: str) -> tuple[int, str]:
    """The instruction first, then files, then the config and options."""
    rank = {"instruction": 0}.get(name, 1 if name.startswith(FILE_INPUT) else 2)
    return rank, name


def _describe(
    name: str, previous: Mapping[str, str], current: Mapping[str, str], where: str
) -> str:
    change = "added" if name not in previous else "removed" if name not in current else "changed"
    kind, _, what = name.partition(":")
    if name.startswith(FILE_INPUT):
        return f"{name[len(FILE_INPUT) :]} {change} ({where})"
    match kind:
        case "instruction":
            return "instruction changed"
        case "arg":
            return f"build arg {what} {change}"
        case "env":
            return f"environment variable {what} {change}"
        case "from":
            return f"the source {what} of COPY --from {change}"
        case "layer-options":
            return "layer options changed (compression, level, reproducible, image format)"
        case "user" | "workdir" | "shell":
            return f"{kind.upper()} changed"
    return f"{name} {change}"
