"""kiln's own directories are never build context, wherever they are.

Why (issue 10.16): in kiln's executor image Python found no /tmp and fell back to the working
directory `/workspace`, which was also the build context, so `COPY .` walked kiln's scratch
files while kiln kept writing them (minutes, hundreds of MB). Kaniko ignores its own directory;
so does kiln: the work dir (`--work-dir` or the temporary one), the cache dir (`--cache-dir`)
and, in an inplace build, `--kiln-dir`, whenever they lie inside the context, are excluded from it
exactly like `.dockerignore` entries appended last (no `!` line can bring them back), and the
build says so once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from kiln.context import BuildContext, IgnoreMatcher, WrappedContext

log = logging.getLogger("kiln")

_GLOB_SPECIALS = "\\*?["


def inside(root: Path, paths: Iterable[Path]) -> list[str]:
    """The `/`-separated paths, relative to `root`, of those `paths` strictly inside it
    (symlinks resolved on both sides; sorted; none below another one)."""
    real_root = Path(os.path.realpath(root))
    found = set()
    for path in paths:
        real = Path(os.path.realpath(path))
        if real != real_root and real.is_relative_to(real_root):
            found.add(real.relative_to(real_root).as_posix())
    return [rel for rel in sorted(found) if not any(rel.startswith(f + "/") for f in found)]


def without_own_dirs(context: BuildContext, own: Iterable[Path]) -> BuildContext:
    """`context`, with every directory of `own` that lies inside it excluded."""
    rels = inside(context.root, own)
    if not rels:
        return context
    log.info(
        "Context: kiln's own %s inside the context, never read as context",
        ", ".join(f"{context.root / rel}" for rel in rels),
    )
    extra = IgnoreMatcher.from_patterns(_escaped(rel) for rel in rels)
    ignore = IgnoreMatcher(context.ignore.patterns + extra.patterns)
    return WrappedContext(context, context.close, ignore=ignore)


def _escaped(rel: str) -> str:
    """`rel` as an ignore pattern that matches exactly that path (Go's `\\` escapes)."""
    return "".join("\\" + ch if ch in _GLOB_SPECIALS else ch for ch in rel)
