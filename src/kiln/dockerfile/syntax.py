"""The lossless line layer: Dockerfile text -> logical instruction lines with source ranges.

Why it exists: how physical lines become instructions (directives, comments, the escape
character as line continuation, empty continuation lines, heredoc bodies, BOM and CRLF) is
independent of what each instruction means. This module reproduces BuildKit's
``parser.Parse`` loop and hands the typed layer one ``Node`` per instruction, keeping the
joined line Docker records in history, the raw source text, and the first/last line numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from kiln.dockerfile.bulk import maker
from kiln.dockerfile.diagnostics import DockerfileWarning
from kiln.dockerfile.directives import DirectiveError, DirectiveReader
from kiln.dockerfile.heredoc import Heredoc, HeredocMarker, chomp, markers_in_line
from kiln.dockerfile.words import NotStringArrayError, parse_json_array, split_command, split_line
from kiln.errors import DockerfileError

__all__ = ["HEREDOC_KEYWORDS", "Node", "SyntaxReader", "SyntaxTree", "parse_syntax"]

HEREDOC_KEYWORDS = frozenset({"RUN", "COPY", "ADD"})
_BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class Node:
    """One instruction as read from the file, before its arguments are interpreted.

    ``original`` is the logical line: continuation characters removed and the following lines
    appended as they are (Docker's ``Node.Original``). ``source`` is the untouched text of
    lines ``line``..``end_line``, heredoc bodies included. ``flags`` are the raw ``--flag``
    words, ``rest`` the argument text after them.

    One is made per instruction (by ``_make_node``, see ``bulk``) and read about ten times
    while it is converted: slots make those reads direct (a NamedTuple's field is a
    descriptor call, about a tenth of the parse of ``bench/parse_dockerfile.py``'s
    ``instructions`` shape).
    """

    keyword: str
    flags: tuple[str, ...]
    rest: str
    original: str
    line: int
    end_line: int
    source: str
    heredocs: tuple[Heredoc, ...] = ()
    comments: tuple[str, ...] = ()


_make_node = maker(Node, positional=True)
_make_heredoc = maker(Heredoc, positional=True)


@dataclass(frozen=True, slots=True)
class SyntaxTree:
    """Everything the line layer found: directives, the escape character, nodes, warnings."""

    directives: dict[str, str]
    escape: str
    nodes: tuple[Node, ...]
    warnings: tuple[DockerfileWarning, ...]
    line_count: int


def _trim_newline(line: str) -> str:
    return line.rstrip("\r\n")


def _is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


class _LineReader:
    """Walks physical lines, tracking the 1-based number of the last line taken.

    ``lines`` are the text split at "\n", without it: a common line's ``original`` is then
    that very string (no copy per line), and ``raw`` adds the newline back for ``source``.
    """

    def __init__(self, text: str) -> None:
        if text.startswith(_BOM):
            text = text[1:]
        self.lines = text.split("\n")
        last = self.lines.pop()  # "" when the text ends with a newline (or is empty)
        self.with_newline = len(self.lines)  # lines before this index end with "\n"
        if last:
            self.lines.append(last)
        self.taken = 0

    def raw(self, index: int) -> str:
        """Line ``index`` (0-based) as in the file, with its newline."""
        line = self.lines[index]
        return line + "\n" if index < self.with_newline else line

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.taken >= len(self.lines):
            raise StopIteration
        self.taken += 1
        return self.raw(self.taken - 1)


class SyntaxReader:
    """Reads one text into nodes (``parse_syntax``, or ``iter_nodes`` to stream them)."""

    def __init__(self, text: str, filename: str) -> None:
        self.filename = filename
        self.reader = _LineReader(text)
        self.directives = DirectiveReader()
        self.continuation = re.compile(re.escape("\\") + r"[ \t]*$")
        self.nodes: list[Node] = []
        self.warnings: list[DockerfileWarning] = []
        self.comments: list[str] = []

    def error(self, message: str, line: int) -> DockerfileError:
        return DockerfileError(message, file=self.filename, line=max(line, 1))

    def feed_directive(self, line: str) -> None:
        try:
            self.directives.feed(line)
        except DirectiveError as exc:
            raise self.error(str(exc), self.reader.taken) from None
        if self.directives.escape != "\\":
            self.continuation = re.compile(re.escape(self.directives.escape) + r"[ \t]*$")

    def trim_continuation(self, line: str) -> tuple[str, bool]:
        """Remove a trailing escape character; return the text and whether the line ends here."""
        found = self.continuation.search(line)
        if found is not None:
            return line[: found.start()], False
        return line, True

    def run(self) -> SyntaxTree:
        return self.tree(tuple(self.iter_nodes()))

    def iter_nodes(self) -> Iterator[Node]:
        """The nodes, each as soon as it is read (``parse`` converts them one by one, so a
        large file's nodes are never all alive at once)."""
        reader = self.reader
        lines = reader.lines
        count = len(lines)
        with_newline = reader.with_newline
        directives = self.directives
        pending = self.nodes
        taken = reader.taken
        escape = directives.escape
        blank_or_escape = " \t" + escape
        while taken < count:
            line = lines[taken]
            taken += 1
            if directives.done:
                # The common line: one whole instruction, no comment, continuation or heredoc.
                # Taken here without the general loop (same result, a third of the work).
                stripped = line.rstrip("\r").lstrip()  # usually ``line`` itself
                if (
                    stripped
                    and stripped[0] != "#"
                    and "<<" not in stripped
                    and (
                        stripped[-1] not in blank_or_escape  # the usual answer, without a copy
                        or not stripped.rstrip(" \t").endswith(escape)
                    )
                ):
                    keyword, space, rest = stripped.partition(" ")
                    if space and keyword.isalpha():  # split_command, without the call
                        rest = rest.strip()
                        if rest.startswith("--"):
                            keyword, flags, rest = split_command(stripped)
                        else:
                            flags = ()
                    else:
                        keyword, flags, rest = split_command(stripped)
                    comments = self.take_comments() if self.comments else ()
                    raw = line + "\n" if taken <= with_newline else line
                    yield _make_node(
                        keyword, flags, rest, stripped, taken, taken, raw, (), comments
                    )
                    continue
            reader.taken = taken
            self.read_instruction(reader.raw(taken - 1))
            taken = reader.taken
            escape = directives.escape  # set by a directive, which only this path reads
            blank_or_escape = " \t" + escape
            if pending:  # a line starts at most one node
                yield pending.pop()
        reader.taken = taken

    def tree(self, nodes: tuple[Node, ...]) -> SyntaxTree:
        """The tree of a finished read, holding ``nodes`` (what ``iter_nodes`` yielded)."""
        return SyntaxTree(
            directives=dict(self.directives.directives),
            escape=self.directives.escape,
            nodes=nodes,
            warnings=tuple(self.warnings),
            line_count=self.reader.taken,
        )

    def read_instruction(self, raw: str) -> None:
        content = _trim_newline(raw)
        if _is_comment(content):
            comment = content.lstrip()[1:].strip()
            if comment:
                self.comments.append(comment)
            else:
                self.comments = []
        stripped = content.lstrip()
        if not self.directives.done:
            self.feed_directive(stripped)
        start = self.reader.taken
        logical, ended = self.trim_continuation("" if stripped.startswith("#") else stripped)
        if ended and logical == "":
            return
        source = [raw]
        parts = [logical]  # joined once: `logical += part` per line made this quadratic
        empty_continuation = False
        while not ended:
            try:
                raw = next(self.reader)
            except StopIteration:
                break
            source.append(raw)
            content = _trim_newline(raw)
            if _is_comment(content):
                continue
            if not content.strip(" \t\v\f\r"):
                empty_continuation = True
                continue
            part, ended = self.trim_continuation(content)
            parts.append(part)
        logical = "".join(parts)
        if empty_continuation:
            self.warnings.append(
                DockerfileWarning(
                    start, f"Empty continuation line found in: {logical}", "NoEmptyContinuation"
                )
            )
        keyword, flags, rest = split_command(logical)
        heredocs = self.read_heredocs(keyword, rest, logical, start, source)
        end = self.reader.taken
        text = "".join(source)
        comments = self.take_comments()
        self.nodes.append(
            _make_node(keyword, flags, rest, logical, start, end, text, heredocs, comments)
        )

    def take_comments(self) -> tuple[str, ...]:
        """The comment lines read since the last node (for the next node)."""
        comments = tuple(self.comments)
        self.comments = []
        return comments

    def read_heredocs(
        self, keyword: str, rest: str, logical: str, start: int, source: list[str]
    ) -> tuple[Heredoc, ...]:
        if "<<" not in logical or not _can_contain_heredoc(keyword, rest):
            return ()
        return tuple([self.read_body(m, start, source) for m in markers_in_line(logical)])

    def read_body(self, marker: HeredocMarker, start: int, source: list[str]) -> Heredoc:
        """The body of ``marker``: the lines up to the one that is its name (after ``\\r``s,
        and leading tabs for ``<<-``), taken from the reader's list and joined once, with the
        body and terminator appended to ``source`` as one piece (500,000 one-line bodies of a
        10 MB RUN made one iterator step and two appends each a third of the parse)."""
        reader = self.reader
        lines = reader.lines
        count = len(lines)
        name = marker.name
        strip_tabs = marker.chomp
        first = taken = reader.taken
        while taken < count:
            candidate = lines[taken].rstrip("\r")
            taken += 1
            if strip_tabs:
                candidate = candidate.lstrip("\t")
            if candidate == name:
                reader.taken = taken
                # Every body line precedes the terminator, so each ended with "\n".
                content = "\n".join(lines[first : taken - 1]) + "\n" if taken - 1 > first else ""
                ended = "\n" if taken <= reader.with_newline else ""
                source.append("\n".join(lines[first:taken]) + ended)
                return _make_heredoc(
                    name,
                    chomp(content) if strip_tabs else content,
                    marker.expand,
                    strip_tabs,
                    marker.fd,
                )
        reader.taken = taken
        raise self.error(f"unterminated heredoc {name!r}", start)


def _can_contain_heredoc(keyword: str, rest: str) -> bool:
    """RUN/COPY/ADD in shell form, also as an ONBUILD trigger (Docker's ``canContainHeredoc``)."""
    if keyword.upper() == "ONBUILD":
        inner = split_line(rest) if rest else None
        if inner is None:
            return False
        keyword, rest = inner.keyword, inner.rest
    if keyword.upper() not in HEREDOC_KEYWORDS:
        return False
    try:
        return parse_json_array(rest) is None
    except NotStringArrayError:
        return False


def parse_syntax(text: str, filename: str = "Dockerfile") -> SyntaxTree:
    """Read ``text`` into logical instruction nodes; raises DockerfileError with the line."""
    return SyntaxReader(text, filename).run()
