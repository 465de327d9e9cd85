"""The ``--flag`` grammar of Dockerfile instructions (BuildKit's ``BFlags``).

Why it exists: each instruction accepts its own small set of flags with three kinds of values
(string, repeatable string, boolean) and Docker's exact rules for unknown, duplicate, and
value-less flags. Declaring a ``FlagSpec`` per instruction keeps those rules in one place.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["NO_FLAGS", "FlagError", "FlagKind", "FlagSpec", "ParsedFlags", "parse_flags"]


class FlagKind(Enum):
    """How a flag takes its value."""

    STRING = "string"
    STRINGS = "strings"  # may repeat, every value kept
    BOOL = "bool"


class FlagError(ValueError):
    """A flag is unknown, repeated, or has a bad value."""


FlagSpec = dict[str, FlagKind]


@dataclass(frozen=True, slots=True)
class ParsedFlags:
    """Flag values: ``values`` (last value per name) and ``lists`` (all values per name)."""

    values: dict[str, str] = field(default_factory=dict)
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def string(self, name: str) -> str | None:
        return self.values.get(name)

    def strings(self, name: str) -> tuple[str, ...]:
        return self.lists.get(name, ())

    def boolean(self, name: str) -> bool:
        return self.values.get(name) == "true"

    def optional_boolean(self, name: str) -> bool | None:
        value = self.values.get(name)
        return None if value is None else value == "true"


#: What an instruction without ``--flag`` words parses to (shared: nothing mutates it).
NO_FLAGS = ParsedFlags()


def _unknown(name: str, spec: FlagSpec) -> FlagError:
    message = f"unknown flag: {name}"
    close = difflib.get_close_matches(name, list(spec), n=1)
    if close:
        message += f" (did you mean {close[0]}?)"
    return FlagError(message)


def _bool_value(name: str, value: str, has_value: bool) -> str:
    if has_value and value == "":
        raise FlagError(f"missing a value on flag: {name}")
    lowered = value.lower()
    if lowered in ("", "true"):
        return "true"
    if lowered == "false":
        return "false"
    raise FlagError(f"expecting boolean value for flag {name}, not: {value}")


def parse_flags(words: tuple[str, ...], spec: FlagSpec) -> ParsedFlags:
    """Check raw ``--name[=value]`` words against ``spec``; raise FlagError like Docker."""
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    for word in words:
        if not word.startswith("--"):
            raise FlagError(f"arg should start with -- : {word}")
        if word == "--":
            break
        name, has_value, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            raise _unknown(name, spec)
        if name in values and kind is not FlagKind.STRINGS:
            raise FlagError(f"duplicate flag specified: {name}")
        if kind is FlagKind.BOOL:
            value = _bool_value(name, value, bool(has_value))
        elif not has_value:
            raise FlagError(f"missing a value on flag: {name}")
        values[name] = value
        lists.setdefault(name, []).append(value)
    return ParsedFlags(values, {k: tuple(v) for k, v in lists.items()})
