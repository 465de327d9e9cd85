"""Resolve a path inside the build context, following symlinks as if the context were ``/``.

Why: Docker follows symlinks in COPY source paths (``COPY link /dst`` copies what ``link``
points at), but a context must never leak files from outside it. BuildKit resolves such links
*scoped* to the context root: an absolute target ``/etc/x`` means ``<context>/etc/x`` and ``..``
stops at the root. We do the same, component by component, with a bound on link hops.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kiln.errors import ContextError

MAX_LINK_HOPS = 255


def _elements(path: str) -> list[str]:
    return [part for part in path.split("/") if part not in ("", ".")]


def scoped_resolve(root: Path, rel_path: str, *, follow_final: bool = True) -> Path:
    """Return ``root`` joined with ``rel_path``, every symlink resolved inside ``root``.

    ``root`` must already be absolute and free of symlinks. Missing components are joined
    lexically, so the result may not exist. With ``follow_final=False`` a symlink in the last
    position is returned as itself (like ``lstat``).
    """
    current: list[str] = []
    pending = list(reversed(_elements(rel_path)))
    hops = 0
    while pending:
        name = pending.pop()
        if name == "..":
            if current:
                current.pop()
            continue
        candidate = root.joinpath(*current, name)
        if not pending and not follow_final:
            current.append(name)
            break
        try:
            info = os.lstat(candidate)
        except OSError:
            current.append(name)
            continue
        if not stat.S_ISLNK(info.st_mode):
            current.append(name)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise ContextError(f"too many levels of symbolic links resolving {rel_path!r}")
        target = os.readlink(candidate)
        if target.startswith("/"):
            current = []
        pending.extend(reversed(_elements(target)))
    return root.joinpath(*current)
