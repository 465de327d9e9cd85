"""Pure dispatch: (stage state, instruction) -> (new state, effect to apply).

Why pure: every Dockerfile rule about ARG/ENV visibility and config fields lives here and can be
tested with no containers and no files. Instructions that must touch the filesystem (RUN, COPY,
ADD, WORKDIR) return an *effect* for the executor; the executor reports back the layer it made and
the builder records it. Metadata-only instructions return a history entry and no effect. Which
words of an instruction are expanded is the instruction's own business (``Instruction.expand``,
as BuildKit's commands expand themselves); dispatch expands it with the stage's variables, then
matches on what it is.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, replace

from kiln.builder.effects import RUN_FILES_DIR, CopyEffect, Effect, RunEffect, WorkdirEffect
from kiln.builder.state import StageState
from kiln.dockerfile import (
    AddInstruction,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    Expander,
    ExpansionError,
    ExposeInstruction,
    HealthcheckInstruction,
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
    heredoc_run,
)
from kiln.errors import DockerfileError
from kiln.image import Healthcheck, HistoryEntry

# Docker's predefined proxy args: usable without an ARG line, never recorded in history nor
# reported as unused.
PROXY_ARGS = frozenset(
    name
    for base in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
    for name in (base, base.lower())
)


@dataclass(frozen=True)
class DispatchContext:
    """What dispatch needs from outside the stage: build args, the file name, the clock."""

    build_args: Mapping[str, str | None]
    filename: str
    created: str
    used_build_args: set[str]
    meta_args: Mapping[str, str]
    escape: str = "\\"


@dataclass(frozen=True)
class Dispatched:
    """Result of dispatching one instruction."""

    state: StageState
    effect: Effect | None
    history: HistoryEntry | None


def refuse_unsupported(instruction: Instruction, filename: str) -> None:
    """Refuse, with ``file:LINE``, a parsed option that kiln does not honour (yet).

    The parser accepts every flag Docker accepts; whatever dispatch and the executor do not
    act on is refused here rather than ignored (`RUN --mount=type=cache` must not leave the
    cache in the image, `RUN --network=none` must not reach the network). The builder calls
    this for every instruction of the stages it will build before it starts, so a refusal
    costs no build time; ``dispatch`` calls it again for ONBUILD triggers.
    """
    problem = _unsupported(instruction)
    if problem is not None:
        raise DockerfileError(problem, file=filename, line=instruction.line)


def _unsupported(ins: Instruction) -> str | None:
    match ins:
        case RunInstruction(mounts=(mount, *_)):
            return f"RUN --mount={mount} is not supported by kiln yet"
        case RunInstruction(network=network) if network not in (None, "default"):
            return (
                f"RUN --network={network} is not supported by kiln yet "
                "(only --network=default, what every RUN gets)"
            )
        case RunInstruction(security=str(security)):
            return f"RUN --security={security} is not supported by kiln yet"
        case AddInstruction(keep_git_dir=True):
            return "ADD --keep-git-dir is not supported: kiln does not fetch git sources with ADD"
    return None


def dispatch(state: StageState, instruction: Instruction, ctx: DispatchContext) -> Dispatched:
    """Apply one instruction to the stage state; raise DockerfileError with file:line on misuse."""
    refuse_unsupported(instruction, ctx.filename)
    try:
        match instruction:
            case ArgInstruction():
                return _arg(state, instruction, ctx)  # its words see each other: see _arg
            case _:
                expanded = instruction.expand(Expander(state.expansion_env(), ctx.escape))
                return _apply(state, expanded, ctx)
    except ExpansionError as exc:
        raise DockerfileError(str(exc), file=ctx.filename, line=instruction.line) from exc


def _apply(state: StageState, ins: Instruction, ctx: DispatchContext) -> Dispatched:
    """Dispatch ``ins``, already expanded."""
    match ins:
        case EnvInstruction():
            return _env(state, ins, ctx)
        case LabelInstruction():
            return _label(state, ins, ctx)
        case ExposeInstruction():
            return _expose(state, ins, ctx)
        case VolumeInstruction():
            return _volume(state, ins, ctx)
        case WorkdirInstruction():
            return _workdir(state, ins, ctx)
        case UserInstruction(user=user):
            return _meta(state.with_config(state.config.with_user(user)), ctx, f"USER {user}")
        case CmdInstruction():
            return _cmd(state, ins, ctx)
        case EntrypointInstruction():
            return _entrypoint(state, ins, ctx)
        case ShellInstruction(shell=shell):
            config = state.config.with_shell(list(shell))
            return _meta(state.with_config(config), ctx, "SHELL " + json.dumps(list(shell)))
        case StopsignalInstruction(signal=signal):
            config = state.config.with_stop_signal(signal)
            return _meta(state.with_config(config), ctx, f"STOPSIGNAL {signal}")
        case MaintainerInstruction(name=name):
            config = state.config.with_author(name)
            return _meta(state.with_config(config), ctx, f"MAINTAINER {name}")
        case OnbuildInstruction(trigger=trigger):
            config = state.config.with_onbuild(trigger)
            return _meta(state.with_config(config), ctx, f"ONBUILD {trigger}")
        case HealthcheckInstruction():
            return _healthcheck(state, ins, ctx)
        case RunInstruction():
            return _run(state, ins, ctx)
        case CopyInstruction():  # and ADD, a CopyInstruction with more fields
            return _copy(state, ins, ctx)
    raise DockerfileError(
        f"{ins.keyword} is not supported by kiln yet", file=ctx.filename, line=ins.line
    )


def _meta(state: StageState, ctx: DispatchContext, created_by: str) -> Dispatched:
    entry = HistoryEntry(created=ctx.created, created_by=created_by, empty_layer=True)
    return Dispatched(state=state, effect=None, history=entry)


def _env(state: StageState, ins: EnvInstruction, ctx: DispatchContext) -> Dispatched:
    config = state.config
    shown = []
    for key, value in ins.pairs:
        config = config.with_env_var(key, value)
        shown.append(f"{key}={value}")
    return _meta(state.with_config(config), ctx, "ENV " + " ".join(shown))


def _arg(state: StageState, ins: ArgInstruction, ctx: DispatchContext) -> Dispatched:
    """ARG expands itself pair by pair: a name or default sees the ARGs declared before it."""
    args = dict(state.args)
    for written, default in ins.args:
        # The name is a word too (`ENV src=file3` then `ARG ${src}=x` declares `file3`), as in
        # BuildKit up to dockerfile 1.7; the default is expanded only when it is used.
        name = Expander(state.expansion_env() | args, ctx.escape).word(written)
        _check_arg_name(name, written, ctx, ins.line)
        given = ctx.build_args.get(name)
        if name in ctx.build_args:
            ctx.used_build_args.add(name)
        if given is not None:
            args[name] = given
        elif default is not None:
            args[name] = Expander(state.expansion_env() | args, ctx.escape).word(default)
        elif name in ctx.meta_args:
            args[name] = ctx.meta_args[name]  # a global ARG redeclared without a default
        else:
            args.pop(name, None)
    return Dispatched(state=replace(state, args=args), effect=None, history=None)


def _check_arg_name(name: str, written: str, ctx: DispatchContext, line: int) -> None:
    """An expanded ARG name must still be a name: not empty, no ``=`` (it would forge pairs)."""
    if not name or "=" in name:
        shown = "an empty string" if not name else repr(name)
        raise DockerfileError(
            f"ARG name {written!r} expands to {shown}, which is not a valid name",
            file=ctx.filename,
            line=line,
        )


def _label(state: StageState, ins: LabelInstruction, ctx: DispatchContext) -> Dispatched:
    labels = dict(ins.pairs)
    shown = " ".join(f"{k}={v}" for k, v in labels.items())
    return _meta(state.with_config(state.config.with_labels(labels)), ctx, "LABEL " + shown)


def _expose(state: StageState, ins: ExposeInstruction, ctx: DispatchContext) -> Dispatched:
    normalised = [_normalise_port(p, ctx, ins.line) for p in ins.ports]
    flat = [p for group in normalised for p in group]
    config = state.config.with_exposed_ports(flat)
    return _meta(state.with_config(config), ctx, "EXPOSE " + " ".join(flat))


def _normalise_port(spec: str, ctx: DispatchContext, line: int) -> list[str]:
    port, _, proto = spec.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise DockerfileError(f"invalid proto: {proto}", file=ctx.filename, line=line)
    start_s, _, end_s = port.partition("-")
    try:
        start = int(start_s)
        end = int(end_s) if end_s else start
    except ValueError:
        raise DockerfileError(
            f"invalid containerPort: {port}", file=ctx.filename, line=line
        ) from None
    if not (0 < start <= end <= 65535):
        raise DockerfileError(f"invalid port range: {port}", file=ctx.filename, line=line)
    return [f"{n}/{proto}" for n in range(start, end + 1)]


def _volume(state: StageState, ins: VolumeInstruction, ctx: DispatchContext) -> Dispatched:
    paths = list(ins.paths)
    if any(not p for p in paths):
        raise DockerfileError(
            "VOLUME specified can not be an empty string", file=ctx.filename, line=ins.line
        )
    config = state.config.with_volumes(paths)
    return _meta(state.with_config(config), ctx, "VOLUME " + json.dumps(paths))


def _workdir(state: StageState, ins: WorkdirInstruction, ctx: DispatchContext) -> Dispatched:
    current = state.config.working_dir or "/"
    resolved = posixpath.normpath(posixpath.join(current, ins.path))
    if resolved.startswith("//"):
        resolved = resolved[1:]
    new_state = state.with_config(state.config.with_working_dir(resolved))
    if resolved == "/":
        return _meta(new_state, ctx, "WORKDIR /")  # BuildKit: no mkdir, no layer
    effect = WorkdirEffect(path=resolved, user=new_state.config.user or "")
    entry = HistoryEntry(created=ctx.created, created_by=f"WORKDIR {resolved}")
    return Dispatched(state=new_state, effect=effect, history=entry)


def _command(state: StageState, command: list[str] | str) -> list[str]:
    """The argv of an exec-form list, or shell-form text run by the stage's SHELL."""
    if isinstance(command, str):
        return [*state.shell, command]
    return list(command)


def _cmd(state: StageState, ins: CmdInstruction, ctx: DispatchContext) -> Dispatched:
    cmd = _command(state, ins.command)
    new_state = replace(state.with_config(state.config.with_cmd(cmd)), cmd_set=True)
    return _meta(new_state, ctx, "CMD " + json.dumps(cmd))


def _entrypoint(state: StageState, ins: EntrypointInstruction, ctx: DispatchContext) -> Dispatched:
    entrypoint = _command(state, ins.command)
    config = state.config.with_entrypoint(entrypoint)
    if not state.cmd_set:
        # Docker: an ENTRYPOINT drops a CMD inherited from the base image.
        config = config.with_cmd(None)
    return _meta(state.with_config(config), ctx, "ENTRYPOINT " + json.dumps(entrypoint))


def _healthcheck(
    state: StageState, ins: HealthcheckInstruction, ctx: DispatchContext
) -> Dispatched:
    if ins.test is None:
        check = Healthcheck.disabled()
    else:
        check = Healthcheck(
            test=tuple(ins.test),
            interval_ns=ins.interval,
            timeout_ns=ins.timeout,
            start_period_ns=ins.start_period,
            start_interval_ns=ins.start_interval,
            retries=ins.retries,
        )
    config = state.config.with_healthcheck(check)
    return _meta(state.with_config(config), ctx, ins.original)


def _run(state: StageState, ins: RunInstruction, ctx: DispatchContext) -> Dispatched:
    argv = _command(state, ins.command)
    files: tuple[tuple[str, str], ...] = ()
    plan = heredoc_run(ins)
    if plan is not None and plan.script is not None:
        # A heredoc with a shebang is executed as a file, not through the shell (as BuildKit).
        files = ((plan.script.name, plan.script.content),)
        argv = [f"{RUN_FILES_DIR}/{plan.script.name}"]
    elif plan is not None:
        argv = [*state.shell, plan.shell_text]
    effect = RunEffect(
        argv=tuple(argv), env=(*state.run_env(), *_proxy_env(state, ctx)), files=files
    )
    entry = HistoryEntry(created=ctx.created, created_by=run_created_by(state, argv))
    return Dispatched(state=state, effect=effect, history=entry)


def run_created_by(state: StageState, argv: list[str]) -> str:
    """BuildKit's history text for RUN: ``RUN |N K=V... argv # buildkit``.

    The declared ARGs are listed in declaration order (their values are part of what the step
    depends on); undeclared predefined proxy args never appear.
    """
    pairs = [f"{k}={v}" for k, v in state.args.items()]
    prefix = [f"|{len(pairs)}", *pairs] if pairs else []
    return "RUN " + " ".join([*prefix, *argv]) + " # buildkit"


def _proxy_env(state: StageState, ctx: DispatchContext) -> list[str]:
    """Predefined proxy build args reach RUN without an ARG line (and stay out of history)."""
    env = state.env_map()
    out = []
    for name in sorted(PROXY_ARGS & set(ctx.build_args)):
        value = ctx.build_args[name]
        if value is not None and name not in state.args and name not in env:
            ctx.used_build_args.add(name)
            out.append(f"{name}={value}")
    return out


def _copy(state: StageState, ins: CopyInstruction, ctx: DispatchContext) -> Dispatched:
    add = ins if isinstance(ins, AddInstruction) else None
    effect = CopyEffect(
        sources=ins.sources,
        dest=ins.dest,
        workdir=state.config.working_dir or "/",
        chown=ins.chown,
        chmod=ins.chmod,
        from_=ins.from_,
        is_add=add is not None,
        heredocs=tuple((h.name, h.content) for h in ins.heredocs),
        line=ins.line,
        parents=ins.parents,
        exclude=ins.exclude,
        checksum=add.checksum if add else None,
        unpack=add.unpack if add else None,
    )
    shown = [*ins.sources, *(f"<<{h.name}" for h in ins.heredocs)]
    created_by = f"{ins.keyword} {' '.join(shown)} {ins.dest} # buildkit"
    entry = HistoryEntry(created=ctx.created, created_by=created_by)
    return Dispatched(state=state, effect=effect, history=entry)
