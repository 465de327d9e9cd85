"""What every node-to-instruction converter needs: the node, the escape char, flags, warnings.

Why it exists: the converters (one per keyword, in ``convert`` and ``convert_files``) share
the same few steps — check flags against a spec, build the common instruction fields, record
warnings — and a small object keeps each converter a short function.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

from kiln.dockerfile.bulk import maker
from kiln.dockerfile.diagnostics import DockerfileWarning
from kiln.dockerfile.flags import NO_FLAGS, FlagError, FlagSpec, ParsedFlags, parse_flags
from kiln.dockerfile.instructions import Instruction
from kiln.dockerfile.syntax import Node
from kiln.dockerfile.words import NotStringArrayError, parse_json_array

__all__ = ["ConvertContext", "InstructionError", "instruction_maker"]

InstructionT = TypeVar("InstructionT", bound=Instruction)


def instruction_maker(cls: type[InstructionT]) -> Callable[..., InstructionT]:
    """``make(ctx, parsed_flags, *, <the fields of cls beyond Instruction's>)``: the ``cls``
    instruction of ``ctx``'s node (see ``bulk.maker``; a converter makes its maker once, at
    import). The common fields come from the node, ``flags`` from ``parsed_flags``."""
    return maker(
        cls,
        "ctx, parsed",
        "node = ctx.node",
        keyword="ctx.keyword",
        line="node.line",
        end_line="node.end_line",
        original="node.original",
        source="node.source",
        flags="dict(parsed.values) if parsed.values else EMPTY_FLAGS",
        raw_flags="node.flags",
    )


# Keywords as written -> upper case (``RUN`` and ``run`` are the usual few spellings).
_UPPER: dict[str, str] = {}
_UPPER_LIMIT = 256


class InstructionError(ValueError):
    """An instruction's arguments or flags are invalid; the caller adds file and line."""


class ConvertContext:
    """The node being converted, and the warnings found while converting it.

    One per parse, pointed at each node in turn with ``point_at`` (cheaper than a new object
    per line); ``keyword`` (asked for several times per conversion) is upper-cased there.
    """

    __slots__ = ("escape", "keyword", "node", "rest", "warnings")

    def __init__(self, node: Node, escape: str) -> None:
        self.escape = escape
        self.point_at(node)

    def point_at(self, node: Node) -> None:
        """Convert ``node`` next (with no warnings yet)."""
        self.node = node
        keyword = node.keyword
        upper = _UPPER.get(keyword)
        if upper is None:
            upper = sys.intern(keyword.upper())  # one string per keyword, not per line
            if len(_UPPER) < _UPPER_LIMIT:
                _UPPER[keyword] = upper
        self.keyword = upper
        self.rest = node.rest
        self.warnings: list[DockerfileWarning] | None = None  # most nodes have none

    def flags(self, spec: FlagSpec) -> ParsedFlags:
        """Parse the node's flags against ``spec`` (an empty spec rejects every flag)."""
        if not self.node.flags:
            return NO_FLAGS
        try:
            return parse_flags(self.node.flags, spec)
        except FlagError as exc:
            raise InstructionError(str(exc)) from None

    def json_args(self) -> list[str] | None:
        """The exec-form list, or None in shell form; non-string arrays are an error."""
        if not self.rest.startswith("["):  # the node's rest is stripped: shell form
            return None
        try:
            return parse_json_array(self.rest)
        except NotStringArrayError as exc:
            raise InstructionError(str(exc)) from None

    def warn(self, message: str, rule: str = "") -> None:
        if self.warnings is None:
            self.warnings = []
        self.warnings.append(DockerfileWarning(self.node.line, message, rule))
