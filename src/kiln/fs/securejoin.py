"""Resolve a path inside a root directory as if that root were ``/``.

Why this exists: layer tars, symlinks in base images and COPY destinations are all untrusted
input. Joining them naively (``root / name``) lets ``..`` components or a symlink such as
``evil -> /`` lead outside the root. ``secure_join`` walks the path one component at a time,
reading each symlink it meets and re-rooting its target, so the result always lies inside root.
The result is only as safe as the tree is stable: callers must not race with other writers.
The build context follows its symlinks with it too (``kiln.context.scoped``), as BuildKit does.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from kiln.errors import UnsafePathError

#: Linux's own limit on symlink hops (MAXSYMLINKS is 40); kept the same so loops fail alike.
MAX_SYMLINK_HOPS = 40


def secure_join(root: Path, unsafe: str, *, follow_final: bool = True) -> Path:
    """Return ``root`` joined with ``unsafe``, resolving symlinks as if ``root`` were ``/``.

    Absolute symlink targets restart at ``root``; ``..`` never climbs above ``root``. Components
    that do not exist are appended as they are. With ``follow_final=False`` a symlink in the last
    component is returned itself instead of being followed (what ``lstat``/``unlink`` need).
    Raises ``UnsafePathError`` for symlink loops.
    """
    return Path(secure_join_str(os.path.abspath(root), unsafe, follow_final=follow_final))


def secure_join_str(root: str, unsafe: str, *, follow_final: bool = True) -> str:
    """``secure_join`` on strings, for hot paths; ``root`` must be absolute and normalised."""
    prefix = root if root.endswith("/") else root + "/"
    pending = _components(unsafe)
    pending.reverse()  # popped from the end
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        if not pending and not follow_final:
            resolved.append(part)
            break
        resolved.append(part)
        target = _link_target(prefix + "/".join(resolved))
        if target is None:
            continue
        resolved.pop()
        hops += 1
        if hops > MAX_SYMLINK_HOPS:
            raise UnsafePathError(
                f"too many levels of symbolic links resolving {unsafe!r} inside {root}"
            )
        if target.startswith("/"):
            resolved = []
        more = _components(target)
        more.reverse()
        pending.extend(more)
    return prefix + "/".join(resolved) if resolved else root


def _components(path: str) -> list[str]:
    """Split a ``/``-separated path into its meaningful components (no ``""`` or ``"."``)."""
    return [part for part in path.split("/") if part not in ("", ".")]


def _link_target(candidate: str) -> str | None:
    """Return the symlink target of ``candidate``, or None if it is not a symlink (or missing)."""
    try:
        mode = os.lstat(candidate).st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
            return None  # joined as it is: whatever opens the result meets the same error
        raise
    if not stat.S_ISLNK(mode):
        return None
    return os.readlink(candidate)
