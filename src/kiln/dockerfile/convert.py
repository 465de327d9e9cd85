"""Node -> typed instruction: argument shapes, arity checks and flag specs per keyword.

Why it exists: this is BuildKit's ``instructions/parse.go`` — the layer that knows what each
keyword's arguments mean and which errors Docker reports for them — kept apart from the line
reader (``syntax``) and from expansion (``lexer``). Values stay unexpanded.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable

from kiln.dockerfile.convert_context import ConvertContext, InstructionError, instruction_maker
from kiln.dockerfile.convert_files import convert_add, convert_copy
from kiln.dockerfile.convert_health import convert_healthcheck
from kiln.dockerfile.flags import NO_FLAGS, FlagKind, FlagSpec
from kiln.dockerfile.instructions import (
    ArgInstruction,
    CmdInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    Instruction,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
)
from kiln.dockerfile.words import quote_aware_words, split_line, whitespace_words

__all__ = ["CONVERTERS", "KEYWORDS", "InstructionError", "UnknownInstructionError", "convert"]

_make_from = instruction_maker(FromInstruction)
_make_run = instruction_maker(RunInstruction)
_make_cmd = instruction_maker(CmdInstruction)
_make_entrypoint = instruction_maker(EntrypointInstruction)
_make_shell = instruction_maker(ShellInstruction)
_make_env = instruction_maker(EnvInstruction)
_make_label = instruction_maker(LabelInstruction)
_make_arg = instruction_maker(ArgInstruction)
_make_expose = instruction_maker(ExposeInstruction)
_make_volume = instruction_maker(VolumeInstruction)
_make_workdir = instruction_maker(WorkdirInstruction)
_make_user = instruction_maker(UserInstruction)
_make_stopsignal = instruction_maker(StopsignalInstruction)
_make_maintainer = instruction_maker(MaintainerInstruction)
_make_onbuild = instruction_maker(OnbuildInstruction)

RUN_FLAGS: FlagSpec = {
    "mount": FlagKind.STRINGS,
    "network": FlagKind.STRING,
    "security": FlagKind.STRING,
}
FROM_FLAGS: FlagSpec = {"platform": FlagKind.STRING}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_SAME_CASING = frozenset({("AS", "FROM"), ("as", "from")})  # the usual spellings, checked fast
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)


class UnknownInstructionError(InstructionError):
    """The keyword is not a Dockerfile instruction; ``suggestion`` is the closest one."""

    def __init__(self, keyword: str) -> None:
        close = difflib.get_close_matches(keyword.upper(), sorted(KEYWORDS), n=1)
        self.suggestion = close[0] if close else None
        super().__init__(f"unknown instruction: {keyword}")


def convert_from(ctx: ConvertContext) -> FromInstruction:
    args = ctx.rest.split(" ")  # whitespace_words' common case, without the call (per stage)
    if "" in args or not ctx.rest.isprintable():
        args = whitespace_words(ctx.rest)
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2] if args[2].islower() else args[2].lower()  # no copy per stage
        if not _STAGE_NAME.match(name):
            raise InstructionError(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols"
            )
        if args[2] != name:
            ctx.warn(f"Stage name '{args[2]}' should be lowercase", "StageNameCasing")
        written = ctx.node.keyword
        if (args[1], written) not in _SAME_CASING and (
            (args[1] == args[1].lower()) != (written == written.lower())
        ):
            ctx.warn(f"'{args[1]}' and '{written}' keywords' casing do not match", "FromAsCasing")
    elif len(args) != 1:
        raise InstructionError("FROM requires either one or three arguments")
    flags = ctx.flags(FROM_FLAGS) if ctx.node.flags else NO_FLAGS  # no call per stage
    platform = flags.values.get("platform")  # flags.string, without the call
    return _make_from(ctx, flags, image=args[0], name=name, platform=platform)


def _command_line(ctx: ConvertContext) -> tuple[list[str] | str, bool]:
    exec_args = ctx.json_args() if ctx.rest.startswith("[") else None
    if exec_args is not None:
        return exec_args, True
    return ctx.rest, False


def convert_run(ctx: ConvertContext) -> RunInstruction:
    # ctx.flags and _command_line, called only when there is something to parse (per line)
    flags = ctx.flags(RUN_FLAGS) if ctx.node.flags else NO_FLAGS
    command, exec_form = _command_line(ctx) if ctx.rest.startswith("[") else (ctx.rest, False)
    if command == "" and not ctx.node.heredocs:
        raise InstructionError("RUN requires at least one argument")
    values = flags.values  # flags.string and flags.strings, without the calls (one per line)
    return _make_run(
        ctx,
        flags,
        command=command,
        exec_form=exec_form,
        heredocs=ctx.node.heredocs,
        mounts=flags.lists.get("mount", ()),
        network=values.get("network"),
        security=values.get("security"),
    )


def _recommend_json(ctx: ConvertContext, exec_form: bool) -> None:
    if not exec_form:
        ctx.warn(
            f"JSON arguments recommended for {ctx.keyword} to prevent unintended behavior "
            "related to OS signals",
            "JSONArgsRecommended",
        )


def convert_cmd(ctx: ConvertContext) -> CmdInstruction:
    flags = ctx.flags({})
    command, exec_form = _command_line(ctx)
    _recommend_json(ctx, exec_form)
    return _make_cmd(ctx, flags, command=command, exec_form=exec_form, heredocs=())


def convert_entrypoint(ctx: ConvertContext) -> EntrypointInstruction:
    flags = ctx.flags({})
    command, exec_form = _command_line(ctx)
    _recommend_json(ctx, exec_form)
    return _make_entrypoint(ctx, flags, command=command, exec_form=exec_form, heredocs=())


def convert_shell(ctx: ConvertContext) -> ShellInstruction:
    flags = ctx.flags({})
    exec_args = ctx.json_args()
    if exec_args is None and ctx.rest:
        raise InstructionError("SHELL requires the arguments to be in JSON form")
    if not exec_args:
        raise InstructionError("SHELL requires at least one argument")
    return _make_shell(ctx, flags, shell=exec_args)


def _key_values(ctx: ConvertContext) -> tuple[tuple[tuple[str, str], ...], bool]:
    """ENV/LABEL pairs (Docker's ``parseNameVal``) and whether the legacy form was used."""
    words = quote_aware_words(ctx.rest, ctx.escape)
    if not words:
        raise InstructionError(f"{ctx.keyword} requires at least one argument")
    if "=" not in words[0]:
        parts = re.split(r"[\t\v\f\r ]+", ctx.rest, maxsplit=1)
        if len(parts) < 2:
            raise InstructionError(f"{ctx.keyword} must have two arguments")
        ctx.warn(
            f'"{ctx.keyword} key=value" should be used instead of legacy '
            f'"{ctx.keyword} key value" format',
            "LegacyKeyValueFormat",
        )
        return ((parts[0], parts[1]),), True
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, has_equals, value = word.partition("=")
        if not has_equals:
            raise InstructionError(
                f'Syntax error - can\'t find = in "{word}". Must be of the form: name=value'
            )
        if not key:
            raise InstructionError(f"{ctx.keyword} names can not be blank")
        pairs.append((key, value))
    return tuple(pairs), False


def convert_env(ctx: ConvertContext) -> EnvInstruction:
    flags = ctx.flags({})
    pairs, legacy = _key_values(ctx)
    return _make_env(ctx, flags, pairs=pairs, legacy=legacy)


def convert_label(ctx: ConvertContext) -> LabelInstruction:
    flags = ctx.flags({})
    pairs, legacy = _key_values(ctx)
    return _make_label(ctx, flags, pairs=pairs, legacy=legacy)


def convert_arg(ctx: ConvertContext) -> ArgInstruction:
    words = quote_aware_words(ctx.rest, ctx.escape)
    if not words:
        raise InstructionError("ARG requires at least one argument")
    flags = ctx.flags({})
    args: list[tuple[str, str | None]] = []
    for word in words:
        key, has_equals, value = word.partition("=")
        if not key:
            raise InstructionError("ARG names can not be blank")
        args.append((key, value if has_equals else None))
    return _make_arg(ctx, flags, args=tuple(args))


def convert_expose(ctx: ConvertContext) -> ExposeInstruction:
    ports = whitespace_words(ctx.rest)
    if not ports:
        raise InstructionError("EXPOSE requires at least one argument")
    return _make_expose(ctx, ctx.flags({}), ports=tuple(ports))


def convert_volume(ctx: ConvertContext) -> VolumeInstruction:
    exec_args = ctx.json_args()
    paths = exec_args if exec_args is not None else whitespace_words(ctx.rest)
    if not paths:
        raise InstructionError("VOLUME requires at least one argument")
    flags = ctx.flags({})
    if any(not p.strip() for p in paths):
        raise InstructionError("VOLUME specified can not be an empty string")
    return _make_volume(ctx, flags, paths=tuple(p.strip() for p in paths))


def _single(ctx: ConvertContext) -> str:
    if not ctx.rest:
        raise InstructionError(f"{ctx.keyword} requires exactly one argument")
    return ctx.rest


def convert_workdir(ctx: ConvertContext) -> WorkdirInstruction:
    path = _single(ctx)
    return _make_workdir(ctx, ctx.flags({}), path=path)


def convert_user(ctx: ConvertContext) -> UserInstruction:
    user = _single(ctx)
    return _make_user(ctx, ctx.flags({}), user=user)


def convert_stopsignal(ctx: ConvertContext) -> StopsignalInstruction:
    signal = _single(ctx)
    return _make_stopsignal(ctx, ctx.flags({}), signal=signal)


def convert_maintainer(ctx: ConvertContext) -> MaintainerInstruction:
    name = _single(ctx)
    ctx.warn("Maintainer instruction is deprecated in favor of using label", "MaintainerDeprecated")
    return _make_maintainer(ctx, ctx.flags({}), name=name)


def convert_onbuild(ctx: ConvertContext) -> OnbuildInstruction:
    if not ctx.rest:
        raise InstructionError("ONBUILD requires at least one argument")
    flags = ctx.flags({})
    trigger_keyword = split_line(ctx.rest).keyword.upper()
    if trigger_keyword == "ONBUILD":
        raise InstructionError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger_keyword in ("MAINTAINER", "FROM"):
        raise InstructionError(f"{trigger_keyword} isn't allowed as an ONBUILD trigger")
    if trigger_keyword not in KEYWORDS:
        raise UnknownInstructionError(trigger_keyword)
    trigger = _ONBUILD_PREFIX.sub("", ctx.node.original, count=1)
    for heredoc in ctx.node.heredocs:
        trigger += "\n" + heredoc.content + heredoc.name
    return _make_onbuild(ctx, flags, trigger=trigger)


CONVERTERS: dict[str, Callable[[ConvertContext], Instruction]] = {
    "ADD": convert_add,
    "ARG": convert_arg,
    "CMD": convert_cmd,
    "COPY": convert_copy,
    "ENTRYPOINT": convert_entrypoint,
    "ENV": convert_env,
    "EXPOSE": convert_expose,
    "FROM": convert_from,
    "HEALTHCHECK": convert_healthcheck,
    "LABEL": convert_label,
    "MAINTAINER": convert_maintainer,
    "ONBUILD": convert_onbuild,
    "RUN": convert_run,
    "SHELL": convert_shell,
    "STOPSIGNAL": convert_stopsignal,
    "USER": convert_user,
    "VOLUME": convert_volume,
    "WORKDIR": convert_workdir,
}
KEYWORDS = frozenset(CONVERTERS)


def convert(ctx: ConvertContext) -> Instruction:
    """The typed instruction for ``ctx.node``; raises InstructionError (no file/line yet)."""
    converter = CONVERTERS.get(ctx.keyword)
    if converter is None:
        raise UnknownInstructionError(ctx.node.keyword)
    return converter(ctx)
