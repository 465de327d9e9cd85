"""Heredocs (``RUN <<EOF``, ``COPY <<-"EOF" /dst``): recognising their names on a line.

Why it exists: a heredoc changes how the *following* source lines are read, so the parser must
recognise ``<<NAME`` words before it knows the instruction's arguments, with Docker's rules: the
word is found by the shell lexer in raw mode, ``<<-`` strips leading tabs, and any quoting of
the name (``<<"EOF"``, ``<<'EOF'``, ``<<E"O"F``) means the body is not to be expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln.dockerfile.bulk import maker
from kiln.dockerfile.lexer import ExpansionError, ShellLexer

__all__ = ["Heredoc", "HeredocMarker", "chomp", "markers_in_line", "parse_marker"]

_MARKER = re.compile(r"^(\d*)<<(-?)([^<]*)$")
_LEADING_TABS = re.compile(r"^\t+", re.MULTILINE)
_NO_ENV: dict[str, str] = {}
# One word the raw lexer returns as written (see ``_verbatim_words``); the group makes
# ``split`` return the words between the gaps. The atomic group keeps an unterminated "
# from backtracking through every way of cutting the text after it (exponential time).
_VERBATIM_WORD = re.compile(
    r"((?:[^\s'\"\\$]+|\$(?!\{)|\\.|\\\Z|'[^']*'|\"(?>(?:[^\"\\$]+|\$(?!\{))*)\")+)", re.DOTALL
)
# A marker whose name has no quote, escape, ``$``, blank or ``<``: the lexer would return the
# name as it is, unquoted. The possessive ``-?+`` keeps ``<<-`` (no name) from matching as
# the name ``-``: ``_MARKER`` reads it as a dash and an empty name, which is no marker.
_PLAIN_MARKER = re.compile(r"(\d*)<<(-?+)([^<$'\"\\\s]+)")


@dataclass(frozen=True, slots=True)
class HeredocMarker:
    """A ``<<NAME`` word: the name, whether the body is expanded, whether tabs are stripped."""

    name: str
    expand: bool
    chomp: bool
    fd: int = 0


_make_marker = maker(HeredocMarker, positional=True)


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A heredoc attached to an instruction.

    ``content`` is the body exactly as the builder should use it: every line with its newline,
    and leading tabs already removed when the marker was ``<<-`` (``chomp``). ``expand`` is False
    when the name was quoted, meaning ``$var`` in the body stays literal. ``fd`` is the file
    descriptor prefix of ``3<<EOF`` (0 when none was given).
    """

    name: str
    content: str
    expand: bool = True
    chomp: bool = False
    fd: int = 0


def chomp(content: str) -> str:
    """Strip leading tabs from every line (the ``<<-`` form)."""
    return _LEADING_TABS.sub("", content)


def parse_marker(word: str) -> HeredocMarker | None:
    """The heredoc marker ``word`` denotes, or None if it is not one (Docker's ``ParseHeredoc``)."""
    plain = _PLAIN_MARKER.fullmatch(word)
    if plain is not None:
        # The usual marker, in one match (a 10 MB RUN can hold 500,000 of them).
        fd, dash, name = plain.groups()
        return _make_marker(name, True, dash == "-", int(fd) if fd else 0)
    match = _MARKER.match(word)
    if match is None or not match.group(3):
        return None
    rest = match.group(3)
    try:
        cooked = ShellLexer(skip_unset=True).process_words(rest, _NO_ENV)
        raw = ShellLexer(skip_unset=True, raw_quotes=True).process_words(rest, _NO_ENV)
    except ExpansionError:
        return None
    if len(cooked) != 1 or len(raw) != 1:
        return None
    quotes_cooked = cooked[0].count("'") + cooked[0].count('"')
    quotes_raw = raw[0].count("'") + raw[0].count('"')
    return HeredocMarker(
        name=cooked[0],
        expand=quotes_cooked == quotes_raw,
        chomp=match.group(2) == "-",
        fd=int(match.group(1) or "0"),
    )


def _verbatim_words(line: str) -> list[str] | None:
    """The words of ``line`` when the raw lexer would return them as written, else None.

    In the raw mode ``markers_in_line`` uses (quotes and escapes kept, no variables) the lexer
    returns most lines' words verbatim: plain text, ``$name``, an escaped character, '...' and
    "..." without escapes. Finding those with one regex split is what keeps a huge RUN line
    linear at C speed; anything else (``${...}``, an escape inside "...", an unterminated quote)
    leaves a gap that is not blank, and the lexer handles the line.
    """
    if "${" in line:
        return None
    pieces = _VERBATIM_WORD.split(line)
    gaps = pieces[::2]
    if any(gap and not gap.isspace() for gap in gaps):
        return None
    return pieces[1::2]


def markers_in_line(line: str) -> list[HeredocMarker]:
    """Every heredoc marker among the words of an instruction line, in order."""
    words = _verbatim_words(line)
    if words is None:
        lexer = ShellLexer(raw_quotes=True, raw_escapes=True, skip_unset=True)
        try:
            words = lexer.process_words(line, _NO_ENV)
        except ExpansionError:
            return []
    return [m for m in (parse_marker(w) for w in words if "<<" in w) if m is not None]
