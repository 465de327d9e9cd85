"""Shell glob patterns for ``${v#p}``, ``${v%p}`` and ``${v/p/r}``.

Why a module of its own: the patterns follow Docker's lexer exactly (``*`` and ``?`` are the only
wildcards, ``[`` is literal, ``\\`` escapes only ``*``, ``?`` and ``\\``), which differs from
``fnmatch``; keeping the translation in one place lets it be tested against the reference tables.
The suffix operators work on reversed strings, so a shortest-suffix match becomes a leftmost
shortest-prefix match that regular expressions can express.
"""

from __future__ import annotations

import re

__all__ = ["PatternError", "replace", "trim_prefix", "trim_suffix"]

_REGEX_SPECIAL = frozenset("[]{}.+()|^$")


class PatternError(ValueError):
    """A substitution pattern is not valid (for example ``\\x`` escaping an ordinary char)."""


def _to_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    star = ".*" if greedy else ".*?"
    out = ["^"] if anchored else []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            if not (out and out[-1] == star):  # `**` is `*`; repeats only add backtracking
                out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            # `}` and `/` are escaped only to get them past the ${...} scanner.
            if i < len(pattern) and pattern[i] in "}/":
                continue
            if i >= len(pattern) or pattern[i] not in "*?\\":
                nxt = pattern[i] if i < len(pattern) else ""
                raise PatternError(f"invalid escape '\\{nxt}'")
            out.append(re.escape(pattern[i]))
            i += 1
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out))


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep each ``\\x`` escape pair in order."""
    units: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            units.append(pattern[i : i + 2])
            i += 2
        else:
            units.append(pattern[i])
            i += 1
    return "".join(reversed(units))


def trim_prefix(pattern: str, value: str, *, greedy: bool) -> str:
    """``${value#pattern}`` (shortest) or ``${value##pattern}`` (greedy)."""
    match = _to_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[match.end() :] if match else value


def trim_suffix(pattern: str, value: str, *, greedy: bool) -> str:
    """``${value%pattern}`` (shortest) or ``${value%%pattern}`` (greedy)."""
    trimmed = trim_prefix(_reverse_pattern(pattern), value[::-1], greedy=greedy)
    return trimmed[::-1]


def replace(pattern: str, replacement: str, value: str, *, replace_all: bool) -> str:
    """``${value/pattern/replacement}`` and ``${value//pattern/replacement}``.

    The replacement is inserted literally; the pattern matches greedily (longest match).
    """
    regex = _to_regex(pattern, greedy=True, anchored=False)
    return regex.sub(lambda _m: replacement, value, count=0 if replace_all else 1)
