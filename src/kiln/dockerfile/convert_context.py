"""What every node-to-instruction converter needs: the node, the escape char, flags, warnings.

Why it exists: the converters (one per keyword, in ``convert`` and ``convert_files``) share
the same few steps — check flags against a spec, build the common instruction fields, record
warnings — and a small object keeps each converter a short function.
"""

from __future__ import annotations

from dataclasses import field
from typing import TYPE_CHECKING, Any

from kiln.dockerfile.diagnostics import DockerfileWarning
from kiln.dockerfile.flags import FlagError, FlagSpec, ParsedFlags, parse_flags
from kiln.dockerfile.syntax import Node
from kiln.dockerfile.words import NotStringArrayError, parse_json_array

if TYPE_CHECKING:
    from dataclasses import dataclass as record
else:
    from kiln.dockerfile._record import record

__all__ = ["ConvertContext", "InstructionError"]


class InstructionError(ValueError):
    """An instruction's arguments or flags are invalid; the caller adds file and line."""


@record()
class ConvertContext:
    """One node being converted, and the warnings found while converting it."""

    node: Node
    escape: str
    warnings: list[DockerfileWarning] = field(default_factory=list)

    @property
    def keyword(self) -> str:
        return self.node.keyword.upper()

    @property
    def rest(self) -> str:
        return self.node.rest

    def flags(self, spec: FlagSpec) -> ParsedFlags:
        """Parse the node's flags against ``spec`` (an empty spec rejects every flag)."""
        try:
            return parse_flags(self.node.flags, spec)
        except FlagError as exc:
            raise InstructionError(str(exc)) from None

    def common(self, parsed: ParsedFlags) -> dict[str, Any]:
        """The keyword arguments every Instruction takes."""
        return {
            "keyword": self.keyword,
            "line": self.node.line,
            "end_line": self.node.end_line,
            "original": self.node.original,
            "source": self.node.source,
            "flags": dict(parsed.values),
            "raw_flags": self.node.flags,
        }

    def json_args(self) -> list[str] | None:
        """The exec-form list, or None in shell form; non-string arrays are an error."""
        try:
            return parse_json_array(self.rest)
        except NotStringArrayError as exc:
            raise InstructionError(str(exc)) from None

    def warn(self, message: str, rule: str = "") -> None:
        self.warnings.append(DockerfileWarning(self.node.line, message, rule))
