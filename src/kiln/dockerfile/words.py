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
from dataclasses import dataclass

__all__ = [
    "NotStringArrayError",
    "SplitLine",
    "extract_flags",
    "parse_json_array",
    "quote_aware_words",
    "split_command",
    "split_line",
    "whitespace_words",
]

_WHITESPACE = re.compile(r"[\t\v\f\r ]+")
_OTHER_BLANKS = re.compile(r"[\t\v\f\r]")
_NON_SPACE = re.compile(r"\S*")  # re's \s is exactly str.isspace()
_PLAIN_FLAGS = re.compile(r"(?:--[^\s'\"\\]+(?:\s+|\Z))+")
_FLAG_SPECIAL = re.compile(r"['\"\\]")


class NotStringArrayError(ValueError):
    """A JSON array on an exec-form instruction holds something other than strings."""

    def __init__(self) -> None:
        super().__init__("when using JSON array syntax, arrays must be comprised of strings only")


@dataclass(frozen=True, slots=True)
class SplitLine:
    """A logical line as ``keyword``, raw ``--flag`` words, and the remaining argument text."""

    keyword: str
    flags: tuple[str, ...]
    rest: str


def split_line(line: str) -> SplitLine:
    """Split off the keyword and leading ``--flags`` (Docker's ``splitCommand``)."""
    return SplitLine(*split_command(line))


def split_command(line: str) -> tuple[str, tuple[str, ...], str]:
    """``split_line`` as a plain tuple (the parser calls it once per instruction)."""
    line = line.strip()
    keyword, space, after = line.partition(" ")
    # A tab, \v, \f or \r may end the keyword too (a keyword of letters holds none of them).
    if not space or (not keyword.isalpha() and _OTHER_BLANKS.search(keyword)):
        parts = _WHITESPACE.split(line, maxsplit=1)
        if len(parts) < 2:
            return parts[0], (), ""
        keyword, after = parts
    # ``after`` may start with more blanks than the regex split would leave.
    after = after.strip()
    if not after.startswith("--"):
        return keyword, (), after
    rest, flags = extract_flags(after)
    return keyword, tuple(flags), rest.strip()


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
        plain = _PLAIN_FLAGS.match(text, pos)
        if plain is not None:  # a run of unquoted flags (not a lone "--"), split at once
            flags += plain.group().split()
            pos = plain.end()
            continue
        word, pos, blank_ok = _flag_word(text, pos)
        if word == "--":
            return text[pos:], flags
        if word or blank_ok:
            flags.append(word)


def _flag_word(text: str, pos: int) -> tuple[str, int, bool]:
    """Read one flag word starting at ``pos``; return it, the end position, and if it was quoted."""
    plain = _NON_SPACE.match(text, pos)
    if plain is not None and not _FLAG_SPECIAL.search(plain.group()):
        return plain.group(), plain.end(), False  # the common case, without a loop per character
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


_QUOTE_AWARE: dict[str, re.Pattern[str]] = {}


def _quote_aware_word(escape: str) -> re.Pattern[str]:
    """One word of ``quote_aware_words``: runs of plain characters, ``escape`` + any character,
    and quoted spans (to the closing quote, or to the end when unterminated).

    The words are substrings of the text (quotes and escapes are kept), so one regex finds them
    all; a lone escape at the very end matches nothing, which drops it as Docker does.
    """
    pattern = _QUOTE_AWARE.get(escape)
    if pattern is None:
        e = re.escape(escape)
        pattern = re.compile(
            rf"(?:[^\s'\"{e}]+|{e}.|\"(?:[^\"{e}]+|{e}.)*\"?|'[^']*'?)+", re.DOTALL
        )
        _QUOTE_AWARE[escape] = pattern
    return pattern


def quote_aware_words(text: str, escape: str = "\\") -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (Docker's ``parseWords``)."""
    if "'" not in text and '"' not in text and escape not in text:
        return text.split()  # str.split's whitespace is exactly str.isspace, as in Docker's
    return _quote_aware_word(escape).findall(text)


def whitespace_words(text: str) -> list[str]:
    """Split on whitespace runs, ignoring quotes (``parseStringsWhitespaceDelimited``)."""
    words = text.split(" ")
    # Single spaces and no other blank (a printable text holds no \t\v\f\r, nor any other
    # whitespace but " "): the common case, without the regex.
    if "" not in words and text.isprintable():
        return words
    stripped = text.strip()  # then no run of blanks is left at either end to give an ""
    return _WHITESPACE.split(stripped) if stripped else []


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
