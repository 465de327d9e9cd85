"""Docker's shell-word lexer: quote removal and ``$variable`` expansion over a mapping.

Why it exists: Dockerfile values (ENV, COPY paths, WORKDIR, ...) are expanded by the builder,
not by a shell, with the rules of BuildKit's ``frontend/dockerfile/shell/lex.go``. This module
reimplements those rules and nothing else: it never sees instructions, files or the process
environment, only a word and a mapping. The parser also uses it (in raw modes) to find heredoc
names, which is why the raw options exist.

Semantics, as in Docker:
- single quotes are literal; double quotes keep everything but ``$`` expansion, and the escape
  character inside them escapes only ``"``, ``$`` and itself (otherwise it stays);
- outside quotes the escape character makes the next character literal (a trailing one vanishes);
- ``$name``, ``${name}``, ``${name:-w}``, ``${name-w}``, ``${name:+w}``, ``${name+w}``,
  ``${name:?msg}``, ``${name?msg}``, ``${name#p}``, ``${name##p}``, ``${name%p}``,
  ``${name%%p}``, ``${name/p/r}``, ``${name//p/r}``; unset variables expand to "".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from kiln.dockerfile import shellpattern

__all__ = [
    "MAX_NESTING",
    "Expander",
    "ExpansionError",
    "ShellLexer",
    "expand_word",
    "expand_words",
]

_EOF = ""
_SPECIAL_PARAMS = frozenset("@*#?-$!0")
#: How deep ``${a:-${b:-...}}`` may nest. The lexer recurses once per level (as BuildKit's
#: does); a bound turns a pathological word into an ExpansionError instead of a
#: RecursionError. Real Dockerfiles nest two or three levels.
MAX_NESTING = 64
_SHOWN = 200  # characters of a failing word quoted in its error message


class ExpansionError(ValueError):
    """A word cannot be expanded: bad ``${...}`` syntax, unterminated quote, or ``${v?msg}``."""


class _Words:
    """Collects the words of ``expand_words``: unquoted whitespace splits, quoted text does not.

    The current word is a list of non-empty pieces joined when it ends (appending to a string
    attribute copies it every time, which made long words quadratic).
    """

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.parts:
                self.words.append("".join(self.parts))
                self.parts = []
                self.in_word = False
        else:
            self.add_raw(ch)

    def add_raw(self, text: str) -> None:
        if text:
            self.parts.append(text)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for piece in _SPACE_RUNS.split(text):
            if piece:
                # One whitespace character ends the word; the rest of its run changes nothing.
                self.add_char(piece[0]) if piece[0].isspace() else self.add_raw(piece)

    def result(self) -> list[str]:
        if self.parts:
            self.words.append("".join(self.parts))
            self.parts = []
            self.in_word = False
        return self.words


_SPACE_RUNS = re.compile(r"(\s+)")  # re's \s is exactly str.isspace()
_SPACE_RUN = re.compile(r"\s+")
_ASCII_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_RUNS: dict[tuple[str, str], re.Pattern[str]] = {}


def _plain_run(escape: str, stop: str) -> re.Pattern[str]:
    """A run of characters with no meaning to the lexer (taken in one step, not one by one)."""
    key = (escape, stop)
    pattern = _PLAIN_RUNS.get(key)
    if pattern is None:
        if stop == "\0quoted":  # inside "...": only $, " and the escape mean something
            special = "".join(re.escape(c) for c in {"$", '"', escape})
            pattern = re.compile(rf"[^{special}]+")
        else:
            special = "".join(re.escape(c) for c in {"$", "'", '"', escape, stop} if c)
            pattern = re.compile(rf"[^{special}\s]+")
        _PLAIN_RUNS[key] = pattern
    return pattern


def _quoted_run(escape: str) -> re.Pattern[str]:
    """A run of characters inside double quotes that are kept as they are."""
    return _plain_run(escape, "\0quoted")


class _ShellWord:
    """One pass over one word; the state of Docker's ``shellWord``."""

    def __init__(self, text: str, env: Mapping[str, str], lexer: ShellLexer) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = lexer.escape
        self.raw_quotes = lexer.raw_quotes
        self.raw_escapes = lexer.raw_escapes
        self.skip_unset = lexer.skip_unset
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else _EOF

    def next(self) -> str:
        ch = self.peek()
        if ch:
            self.pos += 1
        return ch

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            return self.env[name], True
        return "", False

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._process_stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        plain = _plain_run(self.escape, stop)
        special = {"$", "'", '"', self.escape, stop}
        text = self.text
        end = len(text)
        while self.pos < end:
            ch = text[self.pos]
            if ch not in special:
                run = (_SPACE_RUN if ch.isspace() else plain).match(text, self.pos)
                assert run is not None  # ch itself starts the run
                chunk = run.group()
                self.pos = run.end()
                if ch.isspace():
                    # One whitespace character ends the word; the rest of its run changes
                    # nothing (taken in one step, as plain runs are).
                    words.add_char(ch)
                else:
                    words.add_raw(chunk)
                result.append(chunk)
                continue
            if stop and ch == stop:
                self.next()
                return "".join(result), words.result()
            if ch == "$":
                value = self.process_dollar()
                result.append(value)
                words.add_string(value)
            elif ch in ("'", '"'):
                value = self.single_quote() if ch == "'" else self.double_quote()
                result.append(value)
                words.add_raw(value)
            else:
                ch = self.next()
                if ch == self.escape:
                    if self.raw_escapes:
                        words.add_raw(ch)
                        result.append(ch)
                    ch = self.next()
                    if ch == _EOF:
                        break
                    words.add_raw(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.result()

    def single_quote(self) -> str:
        self.next()  # the opening quote
        end = self.text.find("'", self.pos)
        if end < 0:
            self.pos = len(self.text)
            raise ExpansionError(
                "unexpected end of statement while looking for matching single-quote"
            )
        content = self.text[self.pos : end]
        self.pos = end + 1
        return f"'{content}'" if self.raw_quotes else content

    def double_quote(self) -> str:
        opening = self.next()
        result = [opening] if self.raw_quotes else []
        plain = _quoted_run(self.escape)
        special = {"$", '"', self.escape, _EOF}
        text = self.text
        end = len(text)
        while True:
            ch = text[self.pos] if self.pos < end else _EOF
            if ch not in special:
                run = plain.match(text, self.pos)
                assert run is not None  # ch itself is plain
                result.append(run.group())
                self.pos = run.end()
                continue
            if ch == _EOF:
                raise ExpansionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if ch == '"':
                self.next()
                if self.raw_quotes:
                    result.append(ch)
                return "".join(result)
            if ch == "$":
                result.append(self.process_dollar())
                continue
            ch = self.next()
            if ch == self.escape:
                if self.raw_escapes:
                    result.append(ch)
                following = self.peek()
                if following == _EOF:
                    continue
                if following in ('"', "$", self.escape):
                    ch = self.next()
            result.append(ch)

    def process_name(self) -> str:
        plain = _ASCII_NAME.match(self.text, self.pos)
        if plain is not None:
            end = plain.end()
            if end == len(self.text) or self.text[end] < "\x80":
                # An ASCII name ended by an ASCII character: what the loop below finds.
                self.pos = end
                return plain.group()
        name: list[str] = []
        while self.peek() != _EOF:
            ch = self.peek()
            if not name and ch.isdecimal():
                while self.peek() != _EOF and self.peek().isdecimal():
                    name.append(self.next())
                return "".join(name)
            if not name and ch in _SPECIAL_PARAMS:
                return self.next()
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            name.append(self.next())
        return "".join(name)

    def process_dollar(self) -> str:
        self.next()  # the "$"
        if self.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            value, found = self.lookup(name)
            if not found and self.skip_unset:
                return "$" + name
            return value
        self.next()  # the "{"
        if self.depth >= MAX_NESTING:
            raise ExpansionError(f"substitutions nested more than {MAX_NESTING} levels deep")
        self.depth += 1
        try:
            return self._braced()
        finally:
            self.depth -= 1

    def _braced(self) -> str:
        """The rest of ``${...}`` after the brace."""
        if self.peek() == _EOF:
            raise ExpansionError("syntax error: missing '}'")
        if self.peek() in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        if ch == _EOF:
            raise ExpansionError("syntax error: missing '}'")
        if ch == "}":
            value, found = self.lookup(name)
            if not found and self.skip_unset:
                return "${" + name + "}"
            return value
        if ch == "/":
            return self._substitute(name)
        modifier = ch
        null_is_unset = False
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            modifier += ch
        if ch not in ("+", "-", "?", "#", "%"):
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        trims = ch in ("#", "%")
        if null_is_unset and trims:
            raise ExpansionError(f"unsupported modifier ({modifier}) in substitution")
        word = self._argument_until("}", trims)
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + modifier + word + "}"
        missing = not found or (null_is_unset and value == "")
        if ch == "-":
            return word if missing else value
        if ch == "+":
            return "" if missing else word
        if ch == "?":
            if not found:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
            if missing:
                raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
            return value
        greedy = word.startswith(ch)
        pattern = word[1:] if greedy else word
        try:
            if ch == "%":
                return shellpattern.trim_suffix(pattern, value, greedy=greedy)
            return shellpattern.trim_prefix(pattern, value, greedy=greedy)
        except shellpattern.PatternError as exc:
            raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {exc}") from exc

    def _argument_until(self, stop: str, raw_escapes: bool) -> str:
        try:
            word, _ = self.process_stop_on(stop, raw_escapes)
        except ExpansionError:
            if self.peek() == _EOF:
                missing = "'/' in ${}" if stop == "/" else "'}'"
                raise ExpansionError(f"syntax error: missing {missing}") from None
            raise
        return word

    def _substitute(self, name: str) -> str:
        replace_all = self.peek() == "/"
        if replace_all:
            self.next()
        pattern = self._argument_until("/", True)
        replacement = self._argument_until("}", True)
        value, found = self.lookup(name)
        if self.skip_unset and not found:
            return "${" + name + "/" + pattern + "/" + replacement + "}"
        try:
            return shellpattern.replace(pattern, replacement, value, replace_all=replace_all)
        except shellpattern.PatternError as exc:
            raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {exc}") from exc


@dataclass(frozen=True, slots=True)
class ShellLexer:
    """A configured lexer. The defaults are what the builder uses for expansion.

    ``raw_quotes`` keeps quote characters in the output, ``raw_escapes`` keeps escape characters,
    ``skip_unset`` leaves references to unset variables as written; the parser uses these to
    look at words without changing them.
    """

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_unset: bool = False

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """Expand ``word`` as one word (whitespace is kept)."""
        return self._run(word, env)[0]

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """Expand ``word`` and split it on unquoted whitespace."""
        return self._run(word, env)[1]

    def _run(self, word: str, env: Mapping[str, str]) -> tuple[str, list[str]]:
        state = _ShellWord(word, env, self)
        try:
            return state.process_stop_on(_EOF, self.raw_escapes)
        except ExpansionError as exc:
            shown = word if len(word) <= _SHOWN else word[:_SHOWN] + "..."
            raise ExpansionError(f"failed to process {shown!r}: {exc}") from None


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand variables and remove quotes in ``word``, keeping it one word (Docker's ProcessWord).

    Raises ExpansionError for bad syntax and for ``${v?message}`` with ``v`` unset.
    """
    return ShellLexer(escape=escape).process_word(word, env)


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand ``word`` and split the result on unquoted whitespace (Docker's ProcessWords)."""
    return ShellLexer(escape=escape).process_words(word, env)


#: Heredoc bodies: quotes are kept as written (BuildKit expands them with raw quotes), and
#: the backslash escapes whatever the escape directive says.
_HEREDOC_BODY = ShellLexer(raw_quotes=True)


@dataclass(frozen=True, slots=True)
class Expander:
    """The words of one instruction expanded against one environment (BuildKit's
    ``SingleWordExpander``): what ``Instruction.expand`` is given."""

    env: Mapping[str, str]
    escape: str = "\\"

    def word(self, text: str) -> str:
        """``text`` as one word (``expand_word``)."""
        return expand_word(text, self.env, self.escape)

    def words(self, text: str) -> list[str]:
        """``text`` split on unquoted whitespace (``expand_words``)."""
        return expand_words(text, self.env, self.escape)

    def heredoc(self, body: str) -> str:
        """A heredoc body whose delimiter was not quoted: variables expand, quotes stay."""
        return _HEREDOC_BODY.process_word(body, self.env)
