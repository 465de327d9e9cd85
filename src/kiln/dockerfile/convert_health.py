"""HEALTHCHECK: ``NONE`` or ``CMD`` plus Go-duration flags, checked as Docker checks them.

Why a module of its own: HEALTHCHECK is the one instruction with a sub-keyword, numeric flag
validation and a config-shaped result (``["CMD-SHELL", text]``), unlike any other converter.
"""

from __future__ import annotations

from kiln.dockerfile.convert_context import ConvertContext, InstructionError, instruction_maker
from kiln.dockerfile.durations import DurationError, parse_duration
from kiln.dockerfile.flags import FlagKind, FlagSpec, ParsedFlags
from kiln.dockerfile.instructions import HealthcheckInstruction
from kiln.dockerfile.words import NotStringArrayError, parse_json_array

__all__ = ["HEALTHCHECK_FLAGS", "convert_healthcheck"]

_make_healthcheck = instruction_maker(HealthcheckInstruction)

HEALTHCHECK_FLAGS: FlagSpec = {
    "interval": FlagKind.STRING,
    "timeout": FlagKind.STRING,
    "start-period": FlagKind.STRING,
    "start-interval": FlagKind.STRING,
    "retries": FlagKind.STRING,
}
_MINIMUM_NANOS = 1_000_000  # Docker's container.MinimumDuration (1ms)


def _interval(flags: ParsedFlags, name: str) -> int:
    text = flags.string(name)
    if not text:
        return 0
    try:
        nanos = parse_duration(text)
    except DurationError as exc:
        raise InstructionError(str(exc)) from None
    if nanos != 0 and nanos < _MINIMUM_NANOS:
        raise InstructionError(f'Interval "{name}" cannot be less than 1ms')
    return nanos


def _retries(flags: ParsedFlags) -> int:
    text = flags.string("retries")
    if not text:
        return 0
    try:
        retries = int(text, 10)
    except ValueError:
        raise InstructionError(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
    if retries < 0:
        raise InstructionError(f"--retries cannot be negative ({retries})")
    if retries >= 2**31:
        raise InstructionError(f'strconv.ParseInt: parsing "{text}": value out of range')
    return retries


def _test(kind: str, rest: str) -> list[str]:
    if kind != "CMD":
        raise InstructionError(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    try:
        exec_args = parse_json_array(rest)
    except NotStringArrayError as exc:
        raise InstructionError(str(exc)) from None
    if exec_args is not None:
        if not exec_args:
            raise InstructionError("Missing command after HEALTHCHECK CMD")
        return ["CMD", *exec_args]
    if not rest:
        raise InstructionError("Missing command after HEALTHCHECK CMD")
    return ["CMD-SHELL", rest]


def convert_healthcheck(ctx: ConvertContext) -> HealthcheckInstruction:
    """``HEALTHCHECK NONE`` or ``HEALTHCHECK [--interval=...] CMD command``."""
    parts = ctx.rest.split(None, 1)
    if not parts:
        raise InstructionError("HEALTHCHECK requires at least one argument")
    kind = parts[0].upper()
    rest = parts[1] if len(parts) > 1 else ""
    if kind == "NONE":
        if rest:
            raise InstructionError("HEALTHCHECK NONE takes no arguments")
        if ctx.node.flags:
            # BuildKit never reads flags on NONE; kiln refuses them rather than ignore them.
            raise InstructionError(
                f"HEALTHCHECK NONE takes no flags ({ctx.node.flags[0]} would have no effect)"
            )
        return _make_healthcheck(ctx, ParsedFlags(), test=None)
    flags = ctx.flags(HEALTHCHECK_FLAGS)
    return _make_healthcheck(
        ctx,
        flags,
        test=_test(kind, rest),
        interval=_interval(flags, "interval"),
        timeout=_interval(flags, "timeout"),
        start_period=_interval(flags, "start-period"),
        start_interval=_interval(flags, "start-interval"),
        retries=_retries(flags),
    )
