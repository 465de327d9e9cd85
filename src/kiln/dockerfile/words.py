"""Splitting one logical Dockerfile line into keyword, flags and arguments, without expanding.

Why it exists: Docker splits instruction lines in several slightly different ways (flags with
their own quote rules, quote-aware "words" for ENV/LABEL/ARG, plain whitespace for FROM and
COPY, a JSON array for exec form). Each split here mirrors one function of BuildKit's
``parser`` package so the typed-instruction layer can say which one it wants. Quotes and escape
characters are kept in the words: removing them is expansion's job.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataclasses import dataclass as record
else:
    from kiln.dockerfile._record import record

__all__ = [
    "NotStringArrayError",
    "SplitLine",
    "extract_flags",
    "parse_json_array",
    "quote_aware_words",
    "split_line",
    "whitespace_words",
]

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")


class NotStringArrayError(ValueError):
    """A JSON array on an exec-form instruction holds something other than strings."""

    def __init__(self) -> None:
        super().__init__("when using JSON array syntax, arrays must be comprised of strings only")


@record(frozen=True)
class SplitLine:
    """A logical line as ``keyword``, raw ``--flag`` words, and the remaining argument text."""

    keyword: str
    flags: tuple[str, ...]
    rest: str


def split_line(line: str) -> SplitLine:
    """Split off the keyword and leading ``--flags`` (Docker's ``splitCommand``)."""
    parts = _WHITESPACE.split(line.strip(), maxsplit=1)
    if len(parts) < 2:
        return SplitLine(parts[0], (), "")
    rest, flags = extract_flags(parts[1])
    return SplitLine(parts[0], tuple(flags), rest.strip())


def extract_flags(text: str) -> tuple[str, list[str]]:
    """Take leading ``--name[=value]`` words off ``text``; return ``(rest, flags)``.

    Flags may be quoted (``--chown="a b"``); a lone ``--`` ends the flags. The backslash always
    escapes here, whatever the escape directive says (as in Docker).
    """
    flags: list[str] = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos].isspace():
            pos += 1
        if pos >= n:
            return "", flags
        if not text.startswith("--", pos):
            return text[pos:], flags
        word, pos, blank_ok = _flag_word(text, pos)
        if word == "--":
            return text[pos:], flags
        if word or blank_ok:
            flags.append(word)


def _flag_word(text: str, pos: int) -> tuple[str, int, bool]:
    """Read one flag word starting at ``pos``; return it, the end position, and if it was quoted."""
    word: list[str] = []
    quote = ""
    quoted = False
    n = len(text)
    while pos < n:
        ch = text[pos]
        if not quote and ch.isspace():
            break
        if not quote and ch in "'\"":
            quote, quoted = ch, True
        elif quote and ch == quote:
            quote = ""
        elif ch == "\\":
            if pos + 1 < n:
                pos += 1
                word.append(text[pos])
            elif quote:
                quote = ""
        else:
            word.append(ch)
        pos += 1
    return "".join(word), pos, quoted


def quote_aware_words(text: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (Docker's ``parseWords``)."""
    words: list[str] = []
    word: list[str] = []
    blank_ok = False
    quote = ""
    pos = 0
    n = len(text)
    in_word = False
    while pos < n:
        ch = text[pos]
        if not in_word:
            if ch.isspace():
                pos += 1
                continue
            in_word = True
        if not quote:
            if ch.isspace():
                if blank_ok or word:
                    words.append("".join(word))
                word, blank_ok, in_word = [], False, False
                pos += 1
                continue
            if ch in "'\"":
                quote, blank_ok = ch, True
            if ch == escape:
                if pos + 1 == n:
                    pos += 1
                    continue  # an escape at the very end is dropped
                word.append(ch)
                pos += 1
                ch = text[pos]
        else:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if pos + 1 == n:
                    pos += 1
                    continue
                word.append(ch)
                pos += 1
                ch = text[pos]
        word.append(ch)
        pos += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def whitespace_words(text: str) -> list[str]:
    """Split on whitespace runs, ignoring quotes (``parseStringsWhitespaceDelimited``)."""
    return [w for w in _WHITESPACE.split(text.strip()) if w] if text.strip() else []


def parse_json_array(text: str) -> list[str] | None:
    """The strings of a JSON array, or None when ``text`` is not one (then it is shell form).

    Raises NotStringArrayError for a valid JSON array that holds non-strings, as Docker does.
    """
    stripped = text.lstrip()
    if not stripped.startswith("["):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if not isinstance(value, list):
        return None
    if not all(isinstance(item, str) for item in value):
        raise NotStringArrayError()
    return list(value)
