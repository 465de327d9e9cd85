"""`COPY --chmod`: octal (`755`) and symbolic (`u+x,go-w`, `a=rX`) modes.

Why a parser of our own: Docker accepts both spellings (symbolic since Dockerfile 1.14), and the
symbolic form depends on each file's current mode and on whether it is a directory (`X`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

ModeFunc = Callable[[int, bool], int]

_CLAUSE = re.compile(r"^([ugoa]*)([-+=])([rwxXst]*)$")
_WHO_BITS = {"u": 0o4700, "g": 0o2070, "o": 0o1007}
_PERM_BITS = {"r": 0o444, "w": 0o222, "x": 0o111, "s": 0o6000, "t": 0o1000}


def parse_chmod(spec: str) -> ModeFunc:
    """Return a function mapping (current mode, is_dir) to the new permission bits."""
    if re.fullmatch(r"[0-7]{1,4}", spec):
        fixed = int(spec, 8)
        return lambda _mode, _is_dir: fixed
    clauses = []
    for clause in spec.split(","):
        m = _CLAUSE.match(clause)
        if not m:
            raise ValueError(f"invalid chmod value {spec!r}: expected octal or symbolic mode")
        clauses.append((m.group(1) or "a", m.group(2), m.group(3)))

    def apply(mode: int, is_dir: bool) -> int:
        for who, op, perms in clauses:
            mask = 0
            for w in "ugo" if "a" in who else who:
                mask |= _WHO_BITS[w]
            bits = 0
            for p in perms:
                if p == "X":
                    if is_dir or mode & 0o111:
                        bits |= 0o111
                else:
                    bits |= _PERM_BITS[p]
            bits &= mask
            if op == "+":
                mode |= bits
            elif op == "-":
                mode &= ~bits
            else:
                mode = (mode & ~mask) | bits
        return mode & 0o7777

    return apply
