"""Go ``filepath.Match`` patterns, compiled to Python regular expressions.

Why our own: Docker's COPY sources and ``.dockerignore`` patterns use Go's glob syntax, which
is not ``fnmatch``'s. Go negates a class with ``[^...]`` (``fnmatch`` uses ``[!...]``), treats
``\\`` as an escape, and *rejects* malformed patterns (``[a-``, ``[]``, a trailing ``\\``) where
``fnmatch`` silently matches them literally. A malformed pattern must fail the build, as it does
in Docker, rather than quietly select other files.

``*`` and ``?`` never match ``/``. Character classes follow Go exactly (ranges ``a-z``, escapes
inside the class, ``-`` and ``]`` must be escaped, a class may not be empty).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from kiln.errors import ContextError

_MAGIC = frozenset("*?[\\")

RangeCheck = Callable[[str, str, str], None]
EscapeCheck = Callable[[str, int], None]


def has_magic(pattern: str) -> bool:
    """True if ``pattern`` contains glob syntax (Go's ``hasMeta``: ``*``, ``?``, ``[``, ``\\``)."""
    return any(ch in _MAGIC for ch in pattern)


def bad_pattern(pattern: str) -> ContextError:
    """The error for a malformed pattern, worded like Go's ``filepath.ErrBadPattern``."""
    return ContextError(
        f"syntax error in pattern: {pattern!r}",
        hint="escape literal '[', ']', '-', '*', '?' and '\\' with a backslash",
    )


def _class_char(pattern: str, i: int, escape_check: EscapeCheck | None) -> tuple[str, int]:
    """Read one (possibly escaped) character of a class at ``i``, like Go's ``getEsc``."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise bad_pattern(pattern)
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise bad_pattern(pattern)
        if escape_check is not None:
            escape_check(pattern, i)
    # Go also insists that something (at least the closing "]") follows.
    if i + 1 >= len(pattern):
        raise bad_pattern(pattern)
    return pattern[i], i + 1


def parse_class(
    pattern: str,
    start: int,
    *,
    range_check: RangeCheck | None = None,
    escape_check: EscapeCheck | None = None,
) -> tuple[str, int]:
    """Translate the class whose ``[`` is at ``start - 1``; return (regex, index after ``]``).

    ``range_check(pattern, lo, hi)`` and ``escape_check(pattern, index)`` may refuse more than
    Go's ``filepath.Match`` does (``.dockerignore`` patterns: see ``regexpsyntax``).
    """
    i = start
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[str] = []
    count = 0
    while True:
        if i < len(pattern) and pattern[i] == "]" and count > 0:
            i += 1
            break
        lo, i = _class_char(pattern, i, escape_check)
        hi = lo
        if pattern[i] == "-":
            hi, i = _class_char(pattern, i + 1, escape_check)
            if range_check is not None:
                range_check(pattern, lo, hi)
        count += 1
        if lo <= hi:  # Go accepts an inverted range; it simply matches nothing.
            ranges.append(re.escape(lo) if lo == hi else f"{re.escape(lo)}-{re.escape(hi)}")
    if not ranges:
        return ("(?s:.)" if negated else "(?!)"), i
    return "[" + ("^" if negated else "") + "".join(ranges) + "]", i


def translate(pattern: str) -> str:
    """Regex source (unanchored) for a Go ``filepath.Match`` pattern."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            fragment, i = parse_class(pattern, i)
            out.append(fragment)
        elif ch == "\\":
            if i >= len(pattern):
                raise bad_pattern(pattern)
            out.append(re.escape(pattern[i]))
            i += 1
        else:
            out.append(re.escape(ch))
    return "".join(out)


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Compile a Go glob; use ``.fullmatch`` (Go matches the whole name)."""
    return re.compile(translate(pattern))
