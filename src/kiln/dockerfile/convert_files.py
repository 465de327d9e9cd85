"""COPY and ADD: sources, destination, inline heredoc files and their many flags.

Why a module of its own: COPY/ADD are the only instructions whose arguments mix paths and
heredoc files and whose flags differ between two near-identical keywords; keeping them apart
keeps the general converters short.
"""

from __future__ import annotations

from kiln.dockerfile.convert_context import ConvertContext, InstructionError, instruction_maker
from kiln.dockerfile.flags import FlagKind, FlagSpec, ParsedFlags
from kiln.dockerfile.heredoc import Heredoc, parse_marker
from kiln.dockerfile.instructions import AddInstruction, CopyInstruction
from kiln.dockerfile.words import whitespace_words

__all__ = ["ADD_FLAGS", "COPY_FLAGS", "convert_add", "convert_copy"]

_make_copy = instruction_maker(CopyInstruction)
_make_add = instruction_maker(AddInstruction)

COPY_FLAGS: FlagSpec = {
    "from": FlagKind.STRING,
    "chown": FlagKind.STRING,
    "chmod": FlagKind.STRING,
    "link": FlagKind.BOOL,
    "parents": FlagKind.BOOL,
    "exclude": FlagKind.STRINGS,
}
ADD_FLAGS: FlagSpec = {
    "chown": FlagKind.STRING,
    "chmod": FlagKind.STRING,
    "link": FlagKind.BOOL,
    "keep-git-dir": FlagKind.BOOL,
    "checksum": FlagKind.STRING,
    "exclude": FlagKind.STRINGS,
    "unpack": FlagKind.BOOL,
}


def _sources_and_dest(ctx: ConvertContext) -> tuple[tuple[str, ...], str, tuple[Heredoc, ...]]:
    json_args = ctx.json_args()
    args = json_args if json_args is not None else whitespace_words(ctx.rest)
    if len(args) < 2:
        raise InstructionError(
            f"{ctx.keyword} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    *sources, dest = args
    if json_args is not None:
        return tuple(sources), dest, ()
    if parse_marker(dest) is not None:
        raise InstructionError(f"{ctx.keyword} cannot accept a heredoc as a destination")
    by_name = {h.name: h for h in ctx.node.heredocs}
    paths: list[str] = []
    inline: list[Heredoc] = []
    for source in sources:
        marker = parse_marker(source)
        if marker is None:
            paths.append(source)
        else:
            inline.append(by_name.get(marker.name, Heredoc(marker.name, "", marker.expand)))
    return tuple(paths), dest, tuple(inline)


def _shared_fields(ctx: ConvertContext, spec: FlagSpec) -> tuple[ParsedFlags, dict[str, object]]:
    """The flags and the fields COPY and ADD read the same way."""
    sources, dest, heredocs = _sources_and_dest(ctx)
    flags = ctx.flags(spec)
    fields: dict[str, object] = {
        "sources": sources,
        "dest": dest,
        "chown": flags.string("chown"),
        "chmod": flags.string("chmod"),
        "link": flags.boolean("link"),
        "exclude": flags.strings("exclude"),
        "heredocs": heredocs,
    }
    return flags, fields


def convert_copy(ctx: ConvertContext) -> CopyInstruction:
    """``COPY [--from] [--chown] [--chmod] [--link] [--parents] [--exclude]... src... dest``."""
    flags, fields = _shared_fields(ctx, COPY_FLAGS)
    return _make_copy(
        ctx, flags, **fields, from_=flags.string("from"), parents=flags.boolean("parents")
    )


def convert_add(ctx: ConvertContext) -> AddInstruction:
    """``ADD [--chown] [--chmod] [--link] [--keep-git-dir] [--checksum] ... src... dest``."""
    flags, fields = _shared_fields(ctx, ADD_FLAGS)
    return _make_add(
        ctx,
        flags,
        **fields,
        from_=None,
        parents=False,
        checksum=flags.string("checksum"),
        keep_git_dir=flags.boolean("keep-git-dir"),
        unpack=flags.optional_boolean("unpack"),
    )
