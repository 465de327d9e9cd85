"""``.dockerignore`` matching with Docker's semantics (moby/patternmatcher), not gitignore's.

Why not a gitignore library: the rules differ in ways users notice. In Docker every pattern is
anchored at the context root (``*.md`` excludes ``README.md`` but not ``docs/x.md``); ``*`` and
``?`` stay inside one path element while ``**`` spans any number of them (zero included); a
path is excluded when it *or any parent directory* matches; ``!pattern`` re-includes, the last
matching line wins, and a re-inclusion can reach files inside an excluded directory.

How Docker reads the file (``ignorefile.ReadAll``): a UTF-8 BOM is dropped, lines starting with
``#`` are comments (only in column one: ``" #x"`` is a pattern), surrounding white space is
trimmed, blank lines are skipped, and each pattern is cleaned with Go's ``filepath.Clean`` and
made relative (a leading ``/`` or ``./`` goes, so does a trailing ``/``).

How Docker matches one pattern (``Pattern.compile``), reproduced here including its fast paths,
because they are observable: a pattern without wildcards is compared for equality; ``foo/**``
is a prefix test; a pattern *starting* with ``**`` and otherwise literal is a suffix test (so
``**.txt`` matches ``a.txt`` and ``x/b.txt``); anything else becomes a regular expression in
which ``**`` (optionally followed by ``/``) means "any number of directories".

Patterns Docker refuses are refused, with the file and line: what Go's ``filepath.Match``
rejects (``globbing``) and what Go's regexp compiler then rejects (``regexpsyntax``: a backwards
class range like ``[Local-Only]``, an unknown escape like ``\\q``).

Deliberate differences from Docker, only for patterns Docker mishandles: ``*`` or ``?`` inside
``[...]`` are class members here (Docker splices a regex into the class), and ``\\d`` means a
literal ``d`` (Docker hands ``\\d`` to its regex engine as "a digit").

The Dockerfile and the ignore file are sent to the builder even when they match a pattern;
this module does not special-case them. The caller (the build) reads them directly.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kiln.context import globbing, regexpsyntax
from kiln.context.gopath import clean
from kiln.context.ignorefile import IGNORE_FILE_NAME
from kiln.errors import ContextError

_BOM = "\ufeff"


class MatchKind(enum.Enum):
    """How one pattern is tested against a path (Docker's ``matchType``)."""

    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEXP = "regexp"


def _compile(text: str) -> tuple[MatchKind, re.Pattern[str] | None]:
    """Classify and compile one cleaned pattern exactly as patternmatcher's ``compile`` does."""
    globbing.translate(text)  # Go validates with filepath.Match first; so do we.
    parts: list[str] = []
    kind = MatchKind.EXACT
    i = 0
    first = True
    while i < len(text):
        ch = text[i]
        i += 1
        if ch == "*" and i < len(text) and text[i] == "*":
            i += 1
            if i < len(text) and text[i] == "/":
                i += 1
            if i < len(text):
                parts.append("(?:.*/)?")
                kind = MatchKind.REGEXP
            elif kind is MatchKind.EXACT:
                kind = MatchKind.PREFIX
            else:
                parts.append(".*")
                kind = MatchKind.REGEXP
            if first:
                kind = MatchKind.SUFFIX
        elif ch in "*?":
            parts.append("[^/]*" if ch == "*" else "[^/]")
            kind = MatchKind.REGEXP
        elif ch == "\\":
            regexpsyntax.check_escape(text, i, in_class=False)  # never the last character
            parts.append(re.escape(text[i]))
            i += 1
            kind = MatchKind.REGEXP
        elif ch == "[":
            fragment, i = globbing.parse_class(
                text, i, range_check=regexpsyntax.check_range, escape_check=_class_escape
            )
            parts.append(fragment)
            kind = MatchKind.REGEXP
        elif ch == "]":
            parts.append(re.escape(ch))
            kind = MatchKind.REGEXP
        else:
            parts.append(re.escape(ch))
        first = False
    if kind is MatchKind.REGEXP:
        return kind, re.compile("".join(parts))
    return kind, None


def _class_escape(text: str, index: int) -> None:
    regexpsyntax.check_escape(text, index, in_class=True)


def _component_matchers(text: str) -> tuple[re.Pattern[str] | None, ...]:
    """Per-element matchers used to prune walks; ``None`` means "may match anything from here"."""
    out: list[re.Pattern[str] | None] = []
    for element in text.split("/"):
        if "**" in element:
            out.append(None)
            break
        try:
            out.append(globbing.compile_glob(element))
        except ContextError:  # an escaped "/" split the pattern: give up pruning here
            out.append(None)
            break
    return tuple(out)


@dataclass(frozen=True)
class IgnorePattern:
    """One cleaned pattern; ``exclusion`` is True for a ``!`` (re-include) line."""

    text: str
    exclusion: bool
    kind: MatchKind = field(init=False, compare=False)
    regex: re.Pattern[str] | None = field(init=False, compare=False, repr=False)
    elements: tuple[re.Pattern[str] | None, ...] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        kind, regex = _compile(self.text)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "elements", _component_matchers(self.text))

    def match(self, path: str) -> bool:
        """Does this pattern match ``path`` itself (no parent logic)?"""
        if self.kind is MatchKind.EXACT:
            return path == self.text
        if self.kind is MatchKind.PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind is MatchKind.SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.fullmatch(path) is not None

    def match_or_parent(self, path: str, parents: Sequence[str]) -> bool:
        """Does this pattern match ``path`` or one of its ancestor directories?"""
        return self.match(path) or any(self.match(parent) for parent in parents)

    def could_match_below(self, dir_elements: Sequence[str]) -> bool:
        """Could this pattern match the directory, one of its ancestors, or anything inside?

        Conservative: True whenever we cannot rule it out. Used only to decide whether a walk
        may skip an excluded directory.
        """
        for index, name in enumerate(dir_elements):
            if index >= len(self.elements):
                return True  # matched an ancestor: everything below is affected
            element = self.elements[index]
            if element is None:
                return True
            if element.fullmatch(name) is None:
                return False
        return True


def read_patterns(lines: Iterable[str]) -> list[str]:
    """Turn ``.dockerignore`` lines into cleaned patterns (Docker's ``ignorefile.ReadAll``)."""
    return [pattern for _, pattern in read_numbered_patterns(lines)]


def read_numbered_patterns(lines: Iterable[str]) -> list[tuple[int, str]]:
    """``read_patterns``, each pattern with its 1-based line number (for error messages)."""
    patterns: list[tuple[int, str]] = []
    for number, raw in enumerate(lines):
        line = raw.rstrip("\n").removesuffix("\r")
        if number == 0:
            line = line.removeprefix(_BOM)
        if line.startswith("#"):
            continue
        line = line.strip()
        if not line:
            continue
        invert = line.startswith("!")
        if invert:
            line = line[1:].strip()
        if line:
            line = clean(line)
            if len(line) > 1 and line.startswith("/"):
                line = line[1:]
        patterns.append((number + 1, "!" + line if invert else line))
    return patterns


def _parent_dirs(path: str) -> list[str]:
    """``a/b/c`` -> ``["a", "a/b"]``."""
    elements = path.split("/")[:-1]
    return ["/".join(elements[: i + 1]) for i in range(len(elements))]


@dataclass(frozen=True)
class IgnoreMatcher:
    """An ordered list of ``.dockerignore`` patterns; ``matches(path)`` True means excluded."""

    patterns: tuple[IgnorePattern, ...] = ()

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> IgnoreMatcher:
        """Build from already-read patterns (Docker's ``patternmatcher.New``; also COPY --exclude).

        Raises ContextError for ``!`` alone or a malformed glob.
        """
        compiled = (_compile_pattern(raw) for raw in patterns)
        return cls(tuple(pattern for pattern in compiled if pattern is not None))

    @classmethod
    def from_lines(cls, lines: Iterable[str], source: str = IGNORE_FILE_NAME) -> IgnoreMatcher:
        """Build from the lines of a ``.dockerignore`` file (comments and blanks allowed).

        An invalid pattern is a ContextError that starts with ``SOURCE:LINE:``.
        """
        compiled: list[IgnorePattern] = []
        for number, raw in read_numbered_patterns(lines):
            try:
                pattern = _compile_pattern(raw)
            except ContextError as exc:
                raise ContextError(f"{source}:{number}: {exc.message}", hint=exc.hint) from exc
            if pattern is not None:
                compiled.append(pattern)
        return cls(tuple(compiled))

    @classmethod
    def from_file(cls, path: Path, name: str | None = None) -> IgnoreMatcher:
        """Read and compile an ignore file; errors name it (``name``, default ``path``)."""
        shown = name or str(path)
        try:
            text = path.read_bytes().decode("utf-8", "surrogateescape")
        except OSError as exc:
            raise ContextError(f"cannot read ignore file {shown}: {exc.strerror}") from exc
        return cls.from_lines(text.split("\n"), shown)

    def matches(self, rel_path: str) -> bool:
        """True if ``rel_path`` (relative to the context root, ``/``-separated) is excluded.

        Docker's ``MatchesOrParentMatches``: walk the patterns in order; an ordinary pattern
        that matches the path or a parent excludes it, a later ``!`` pattern that matches the
        path or a parent includes it again.
        """
        if not self.patterns:
            return False  # no ignore file: nothing to split (a deep path costs its depth)
        path = _normalise(rel_path)
        if path == ".":
            return False
        parents = _parent_dirs(path)
        excluded = False
        for pattern in self.patterns:
            if pattern.exclusion != excluded:
                continue  # cannot change the outcome
            if pattern.match_or_parent(path, parents):
                excluded = not pattern.exclusion
        return excluded

    def may_contain_included(self, rel_dir: str) -> bool:
        """Could anything below the excluded directory ``rel_dir`` be re-included?

        False lets a walker skip the directory entirely. True is conservative: the walker
        descends and asks ``matches`` for each entry.
        """
        path = _normalise(rel_dir)
        elements = [] if path == "." else path.split("/")
        return any(p.exclusion and p.could_match_below(elements) for p in self.patterns)


def _compile_pattern(raw: str) -> IgnorePattern | None:
    """One pattern as patternmatcher's ``New`` takes it (None for a blank one)."""
    text = raw.strip()
    if not text:
        return None
    text = clean(text)
    exclusion = text.startswith("!")
    if exclusion:
        text = text[1:]
        if not text:
            raise ContextError('illegal exclusion pattern: "!"')
    return IgnorePattern(text, exclusion)


def _normalise(rel_path: str) -> str:
    path = clean(rel_path)
    return path.lstrip("/") or "."
