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


def within_context(root: Path, path: Path) -> Path:
    """Where ``path`` really is when it names something inside the context ``root``.

    A path under ``root`` (``root`` joined with a relative name, ``..`` and all) is resolved
    with ``scoped_resolve``, so a Dockerfile or ``.dockerignore`` that is a symlink to
    ``/etc/passwd`` or ``../../x`` means a file inside the context (and usually none), never one
    of the host's: BuildKit reads them from the transferred context the same way. A path
    elsewhere (``-f /somewhere/Dockerfile``: the user's own file) is returned as it is.
    """
    try:
        rel = path.relative_to(root)
    except ValueError:
        return path
    return scoped_resolve(root, rel.as_posix())
