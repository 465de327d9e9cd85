"""Which ignore file applies to a build (BuildKit's lookup rule).

Why a separate rule: with several Dockerfiles in one context, each may carry its own ignore
file. BuildKit looks for ``<Dockerfile-name>.dockerignore`` next to the Dockerfile first (so
``app.Dockerfile`` uses ``app.Dockerfile.dockerignore``) and only then for ``.dockerignore`` at
the root of the context. Exactly one file applies; they are never merged.
"""

from __future__ import annotations

from pathlib import Path

from kiln.context.scoped import within_context

IGNORE_FILE_NAME = ".dockerignore"


def find_ignore_file(context_root: Path, dockerfile: Path | None) -> Path | None:
    """Return the ignore file for this build, or None when there is none.

    ``dockerfile`` is the path of the Dockerfile as the build will read it (None when it is
    not known, e.g. it comes from stdin): only then is the per-Dockerfile file considered.
    The path returned is the file as named; a symlink inside the context resolves inside it
    (read it through ``within_context``).
    """
    if dockerfile is not None:
        specific = dockerfile.with_name(dockerfile.name + IGNORE_FILE_NAME)
        if within_context(context_root, specific).is_file():
            return specific
    generic = context_root / IGNORE_FILE_NAME
    if within_context(context_root, generic).is_file():
        return generic
    return None
