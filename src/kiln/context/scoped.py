"""Where a path named inside the build context really is, symlinks followed inside the context.

Why: Docker follows symlinks in COPY source paths (``COPY link /dst`` copies what ``link``
points at), but a context must never leak files from outside it. BuildKit resolves such links
*scoped* to the context root: an absolute target ``/etc/x`` means ``<context>/etc/x`` and ``..``
stops at the root. That is exactly what ``kiln.fs.secure_join`` does for image roots, so the
context uses it too (one walk, one hop limit: Linux's 40).
"""

from __future__ import annotations

from pathlib import Path

from kiln.errors import ContextError, UnsafePathError
from kiln.fs import secure_join


def scoped_resolve(root: Path, rel_path: str) -> Path:
    """``root`` joined with ``rel_path``, every symlink resolved inside ``root``
    (``secure_join``); a symlink loop in the context is the context's error."""
    try:
        return secure_join(root, rel_path)
    except UnsafePathError as exc:
        raise ContextError(str(exc)) from None


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
