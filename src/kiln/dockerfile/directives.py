"""Parser directives (``# syntax=``, ``# escape=``, ``# check=``) at the top of a Dockerfile.

Why it exists: directives change how the rest of the file is read (the escape character drives
line continuation and word splitting), and Docker only honours them before the first line that
is not a directive, so they need a small state machine the line reader consults.
"""

from __future__ import annotations

import re

__all__ = ["KNOWN_DIRECTIVES", "DirectiveError", "DirectiveReader"]

KNOWN_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")


class DirectiveError(ValueError):
    """A directive is repeated or has an invalid value."""


class DirectiveReader:
    """Feeds lines until the first non-directive; collects directives and the escape character."""

    def __init__(self) -> None:
        self.directives: dict[str, str] = {}
        self.escape = "\\"
        self.done = False

    def feed(self, line: str) -> None:
        """Look at one physical line (without its newline)."""
        if self.done:
            return
        match = _DIRECTIVE.match(line)
        if match is None:
            self.done = True
            return
        key = match.group(1).lower()
        if key not in KNOWN_DIRECTIVES:
            self.done = True
            return
        if key in self.directives:
            raise DirectiveError(f"only one {key} parser directive can be used")
        value = match.group(2)
        if key == "escape":
            if value not in ("\\", "`"):
                raise DirectiveError(f"invalid escape token '{value}' does not match ` or \\")
            self.escape = value
        self.directives[key] = value
