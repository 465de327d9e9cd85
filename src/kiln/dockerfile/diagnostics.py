"""Warnings about a Dockerfile, as data.

Why it exists: the parser must not print. Deprecated or legacy syntax (MAINTAINER, ``ENV k v``,
empty continuation lines) is reported as values the caller renders (the CLI prints them, a
``kiln parse`` command includes them in its JSON), following BuildKit's "warnings are data".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DockerfileWarning"]


@dataclass(frozen=True, slots=True)
class DockerfileWarning:
    """One warning: the 1-based ``line`` it is about and a human ``message``.

    ``rule`` names the BuildKit check it corresponds to (``MaintainerDeprecated``,
    ``LegacyKeyValueFormat``, ...) when there is one, so users can look it up.
    """

    line: int
    message: str
    rule: str = ""

    def __str__(self) -> str:
        suffix = f" ({self.rule})" if self.rule else ""
        return f"line {self.line}: {self.message}{suffix}"
