"""What ``.dockerignore`` and ``COPY --exclude`` patterns must also satisfy: Go's regexp syntax.

Why a second set of rules: moby/patternmatcher (used for ``.dockerignore`` and, through fsutil,
for ``COPY --exclude``) first checks a pattern with ``filepath.Match`` (``globbing`` does that
here), then turns it into a Go regular expression, copying character classes and backslash
escapes into it as written. Go's regexp compiler then refuses some patterns that
``filepath.Match`` accepts, and Docker fails the build ("syntax error in pattern"):

- a class range whose start is after its end, like the ``l-O`` in ``[Local-Only]``
  (``filepath.Match`` would just never match it);
- an escape Go's regexp does not know, like ``\\q`` or ``\\8``, or ``\\b``/``\\z`` inside a class.

COPY/ADD *source* patterns go through ``filepath.Match`` only, so these checks are not applied
to them. Escapes that Go's regexp gives a meaning (``\\d``, ``\\t``, ``\\pL``) are accepted and
still match their literal character here; see ``ignore``.
"""

from __future__ import annotations

from kiln.context.globbing import bad_pattern
from kiln.errors import ContextError

# Escapes Go's regexp accepts anywhere: C escapes and Perl classes (``parseEscape``,
# ``parsePerlClassEscape``).
_ESCAPE_LETTERS = frozenset("afnrtvdDsSwW")
# ... and outside a class only: assertions, any byte, quoting (``parse``).
_OUTSIDE_CLASS_LETTERS = frozenset("AbBCQz")
# Single-letter Unicode classes (``\pL``); ``\p{...}`` cannot survive patternmatcher, which
# escapes ``{``.
_UNICODE_CLASSES = frozenset("CLMNPSZ")
_HEX = frozenset("0123456789abcdefABCDEF")
_OCTAL = frozenset("01234567")


def check_range(pattern: str, lo: str, hi: str) -> None:
    """Refuse a class range that Go's regexp refuses (its start after its end)."""
    if lo > hi:
        raise _refused(pattern, f"invalid character class range {lo}-{hi}")


def check_escape(pattern: str, index: int, *, in_class: bool) -> None:
    """Refuse the escape whose escaped character is at ``index`` if Go's regexp refuses it."""
    char = pattern[index]
    after = pattern[index + 1 : index + 3]
    if char.isascii() and not char.isalnum():
        return  # punctuation: always a literal
    if char in _ESCAPE_LETTERS or (not in_class and char in _OUTSIDE_CLASS_LETTERS):
        return
    if char in "pP" and after[:1] in _UNICODE_CLASSES:
        return
    if char == "x" and len(after) == 2 and set(after) <= _HEX:
        return
    if char == "0" or (char in "1234567" and after[:1] in _OCTAL):
        return
    raise _refused(pattern, f"invalid escape sequence \\{char}")


def _refused(pattern: str, reason: str) -> ContextError:
    error = bad_pattern(pattern)
    return ContextError(f"{error.message} ({reason})", hint=error.hint)
