"""The parsed Dockerfile: directives, meta ARGs, stages — and ``parse`` that builds it.

Why it exists: the build walks stages, not lines. This module turns the typed instructions into
Docker's stage structure (ARGs before the first FROM are meta args, every FROM opens a stage,
stage names are unique) and attaches ``file:line`` to every error on the way out.
"""

from __future__ import annotations

import gc
import itertools
from dataclasses import dataclass
from typing import Any

from kiln.dockerfile.bulk import maker
from kiln.dockerfile.convert import CONVERTERS, UnknownInstructionError, convert
from kiln.dockerfile.convert_context import ConvertContext, InstructionError
from kiln.dockerfile.diagnostics import DockerfileWarning
from kiln.dockerfile.instructions import ArgInstruction, FromInstruction, Instruction
from kiln.dockerfile.jsonform import instruction_to_dict
from kiln.dockerfile.source import decode_dockerfile
from kiln.dockerfile.syntax import SyntaxReader
from kiln.errors import DockerfileError

__all__ = ["Dockerfile", "Stage", "parse"]


@dataclass(frozen=True, slots=True)
class Stage:
    """One build stage: its FROM and the instructions after it, up to the next FROM."""

    name: str | None
    index: int
    from_: FromInstruction
    instructions: tuple[Instruction, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "from": instruction_to_dict(self.from_),
            "instructions": [instruction_to_dict(i) for i in self.instructions],
        }


@dataclass(frozen=True, slots=True)
class Dockerfile:
    """A whole Dockerfile. ``escape`` is the escape character words are expanded with."""

    filename: str
    directives: dict[str, str]
    meta_args: tuple[ArgInstruction, ...]
    stages: tuple[Stage, ...]
    warnings: tuple[DockerfileWarning, ...] = ()
    escape: str = "\\"

    def stage(self, name_or_index: str) -> Stage | None:
        """The stage named ``name_or_index`` (case-insensitive) or with that index, if any."""
        wanted = name_or_index.lower()
        for stage in self.stages:
            if stage.name == wanted:
                return stage
        if wanted.isdecimal() and int(wanted) < len(self.stages):
            return self.stages[int(wanted)]
        return None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (what ``kiln parse`` prints)."""
        return {
            "filename": self.filename,
            "directives": dict(self.directives),
            "escape": self.escape,
            "meta_args": [instruction_to_dict(a) for a in self.meta_args],
            "stages": [s.to_dict() for s in self.stages],
            "warnings": [
                {"line": w.line, "message": w.message, "rule": w.rule} for w in self.warnings
            ],
        }


class _StageBuilder:
    """Groups instructions into stages as they arrive, enforcing Docker's ordering rules."""

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.meta_args: list[ArgInstruction] = []
        self.made: list[Stage] = []  # the stages before the open one
        # The open stage: its FROM and its instructions so far. Its frozen Stage is made when
        # the next FROM (or the end) closes it (re-making a Stage per instruction made parsing
        # quadratic); the one list is reused for every stage.
        self.from_: FromInstruction | None = None
        self.current: list[Instruction] | None = None
        self.names: set[str] = set()

    def add(self, instruction: Instruction) -> None:
        """Add ``instruction`` (``_parse`` calls ``open_stage`` or appends to ``current``
        itself when it can: one call less per line)."""
        if type(instruction) is FromInstruction:
            self.open_stage(instruction)
        elif self.current is not None:
            self.current.append(instruction)
        else:
            if not isinstance(instruction, ArgInstruction):
                raise DockerfileError(
                    f"{instruction.keyword} before the first FROM: "
                    "no build stage in current context",
                    file=self.filename,
                    line=instruction.line,
                    hint="only ARG may come before the first FROM",
                )
            self.meta_args.append(instruction)

    def open_stage(self, instruction: FromInstruction) -> None:
        if instruction.name is not None:
            if instruction.name in self.names:
                raise DockerfileError(
                    f'duplicate stage name "{instruction.name}"',
                    file=self.filename,
                    line=instruction.line,
                )
            self.names.add(instruction.name)
        if self.current is None:
            self.current = []
        else:
            self.close_stage()
        self.from_ = instruction

    def close_stage(self) -> None:
        from_, current = self.from_, self.current
        if from_ is None or current is None:
            return
        self.made.append(
            _make_stage(
                name=from_.name, index=len(self.made), from_=from_, instructions=tuple(current)
            )
        )
        current.clear()

    def stages(self) -> tuple[Stage, ...]:
        """Every stage (the open one closed); call once, at the end."""
        self.close_stage()
        self.from_ = None
        return tuple(self.made)


_make_stage = maker(Stage)  # one Stage per FROM: the frozen __init__ is slow (see ``bulk``)


def parse(text: str | bytes, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile ``text``; raise ``DockerfileError`` (with file and line) when invalid.

    ``bytes`` are decoded as UTF-8 first (``source.decode_dockerfile``: invalid bytes are a
    located error); pass the file's bytes rather than decoding them yourself.

    The cycle collector is paused meanwhile: parsing allocates a few objects per line and
    makes no reference cycles, and on a large file the collector's passes over the growing
    node list cost about as much as the parsing itself.
    """
    if isinstance(text, bytes):
        text = decode_dockerfile(text, filename)
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _parse(text, filename)
    finally:
        if collecting:
            gc.enable()


def _parse(text: str, filename: str) -> Dockerfile:
    reader = SyntaxReader(text, filename)
    builder = _StageBuilder(filename)
    converted: list[DockerfileWarning] = []
    failure = _convert_nodes(reader, builder, converted)
    if failure is not None:
        raise failure
    tree = reader.tree(())
    warnings = [*tree.warnings, *converted]
    if builder.current is None:
        # Nodes but no stage and no error: every one was an ARG.
        what = "there is no FROM" if builder.meta_args else "the file has no instructions"
        raise DockerfileError(
            f"no build stage in Dockerfile: {what}",
            file=filename,
            line=max(tree.line_count, 1),
            hint="a Dockerfile must contain at least one FROM instruction",
        )
    return Dockerfile(
        filename=filename,
        directives=dict(tree.directives),
        meta_args=tuple(builder.meta_args),
        stages=builder.stages(),
        warnings=tuple(sorted(warnings, key=lambda w: w.line)),
        escape=tree.escape,
    )


def _convert_nodes(
    reader: SyntaxReader, builder: _StageBuilder, warnings: list[DockerfileWarning]
) -> DockerfileError | None:
    """Convert the nodes into ``builder`` as they are read (then drop them); the first error.

    After an error the rest of the file is still read, so an error of the line layer further
    down (an unterminated heredoc) wins, as when every line was read before converting any.
    """
    nodes = reader.iter_nodes()
    first = next(nodes, None)
    if first is None:
        return None
    ctx = ConvertContext(first, reader.directives.escape)  # known once a node has been read
    converters = CONVERTERS
    failure: DockerfileError | None = None
    try:
        for node in itertools.chain((first,), nodes):
            ctx.point_at(node)
            # ``convert`` without the call (it raises the error for an unknown keyword).
            instruction = converters.get(ctx.keyword, convert)(ctx)
            if ctx.warnings:
                warnings.extend(ctx.warnings)
            if type(instruction) is FromInstruction:
                builder.open_stage(instruction)
            elif builder.current is not None:
                builder.current.append(instruction)
            else:
                builder.add(instruction)
    except UnknownInstructionError as exc:
        hint = f"did you mean {exc.suggestion}?" if exc.suggestion else None
        failure = DockerfileError(str(exc), file=builder.filename, line=ctx.node.line, hint=hint)
    except InstructionError as exc:
        failure = DockerfileError(str(exc), file=builder.filename, line=ctx.node.line)
    except DockerfileError as exc:
        failure = exc
    for _ in nodes:  # the rest of the file, for the line layer's errors
        pass
    return failure
