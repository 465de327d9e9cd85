"""COPY/ADD sources: from the patterns in a Dockerfile to files in the context.

Why here and not in the build: what a source pattern may name is a property of the context
(it may not leave the root, ignored files are invisible, symlinks resolve inside the root), and
the build should get back plain, already-checked paths.

Docker's rules, as implemented:

- A pattern is relative to the context root; a leading ``/`` means the root too. It is cleaned
  with Go's ``filepath.Clean``; a result that still starts with ``..`` is refused ("forbidden
  path outside the build context", as the classic builder said; BuildKit silently re-roots it,
  which hides mistakes).
- Wildcards are Go ``filepath.Match`` per path element: ``*``, ``?``, ``[...]``, ``\\`` escapes.
  ``**`` is *not* recursive in COPY sources (Docker has never supported that outside
  ``COPY --parents``); like Go, it behaves as ``*``. Matches are returned in sorted order.
- A pattern without wildcards that names nothing visible is an error. A wildcard that matches
  nothing is allowed when another pattern of the same instruction matched (Docker users rely
  on ``COPY package.json package-lock.json* ./``); if nothing at all matched, it is an error.
- Paths excluded by ``.dockerignore`` do not exist for COPY. An excluded directory still
  exists when a ``!`` line re-includes something inside it (Docker sends those parents).
- Symlinks named by a pattern are followed (scoped to the root); symlinks *inside* a copied
  directory are yielded as themselves by ``walk_source``.
- Sockets do not exist for COPY (BuildKit does not transfer them): ``COPY .`` skips them and a
  pattern naming one finds nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiln.context.globbing import compile_glob, has_magic
from kiln.context.gopath import clean, escapes_root
from kiln.context.ignore import IgnoreMatcher
from kiln.context.scoped import scoped_resolve
from kiln.context.sources import BuildContext
from kiln.errors import ContextError


@dataclass(frozen=True)
class SourceMatch:
    """One COPY/ADD source found in the context.

    ``rel_path`` is the path as matched (``/``-separated, relative to the root, ``.`` for the
    root itself): its last element names the copy at the destination. ``abs_path`` is where
    the content really is, after following symlinks inside the context.
    """

    rel_path: str
    abs_path: Path
    is_dir: bool


SourceEntry = SourceMatch  # the name docs/internals.md used first


def _not_found(pattern: str) -> ContextError:
    return ContextError(
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        f"stat {pattern}: file does not exist",
        hint="check the path is relative to the build context and not in .dockerignore",
    )


def _sorted_entries(directory: Path) -> list[os.DirEntry[str]]:
    """Directory entries sorted by their bytes, as Go sorts names."""
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda entry: os.fsencode(entry.name))


def _is_socket(entry: os.DirEntry[str]) -> bool:
    """A socket is not part of a context: BuildKit's file transfer leaves it out, so ``COPY .``
    skips it (FIFOs and devices are still sent, and COPY refuses them with a clear error).
    Only entries that are neither files nor links cost a ``stat``."""
    if entry.is_file(follow_symlinks=False) or entry.is_symlink():
        return False
    return stat.S_ISSOCK(entry.stat(follow_symlinks=False).st_mode)


def _walk(
    ignore: IgnoreMatcher, directory: Path, ctx_prefix: str, out_prefix: str
) -> Iterator[tuple[str, Path]]:
    # A stack, not recursion: a context tree may be deeper than Python's recursion limit.
    stack = [(iter(_sorted_entries(directory)), ctx_prefix, out_prefix)]
    while stack:
        entries, ctx_dir, out_dir = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        ctx_rel = ctx_dir + entry.name
        out_rel = out_dir + entry.name
        is_dir = entry.is_dir(follow_symlinks=False)
        if not is_dir and _is_socket(entry):
            continue
        path = Path(entry.path)
        if not ignore.matches(ctx_rel):
            yield out_rel, path
            if is_dir:
                stack.append((iter(_sorted_entries(path)), ctx_rel + "/", out_rel + "/"))
        elif is_dir and ignore.may_contain_included(ctx_rel):
            below = list(_walk(ignore, path, ctx_rel + "/", out_rel + "/"))
            if below:  # Docker sends the parents of re-included files
                yield out_rel, path
                yield from below


def _context_rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _visible(ignore: IgnoreMatcher, root: Path, rel: str, is_dir: bool) -> bool:
    """Does ``rel`` exist in the context as Docker would transfer it?"""
    if rel == "." or not ignore.matches(rel):
        return True
    if not (is_dir and ignore.may_contain_included(rel)):
        return False
    return next(_walk(ignore, root / rel, rel + "/", ""), None) is not None


def _lookup(context: BuildContext, rel: str) -> SourceMatch | None:
    """The visible source named exactly ``rel`` (symlinks followed), or None."""
    root = context.root
    real = scoped_resolve(root, rel)
    try:
        info = os.stat(real)
    except OSError:
        return None
    if stat.S_ISSOCK(info.st_mode):
        return None  # never transferred (see _is_socket)
    is_dir = stat.S_ISDIR(info.st_mode)
    real_rel = _context_rel(root, real)
    for checked in {rel, real_rel}:
        if not _visible(context.ignore, root, checked, is_dir):
            return None
    return SourceMatch(rel, real, is_dir)


def _glob(context: BuildContext, elements: list[str]) -> list[SourceMatch]:
    """Expand a wildcard pattern element by element, like Go's ``filepath.Glob``."""
    frontier: list[str] = [""]
    for index, element in enumerate(elements):
        last = index == len(elements) - 1
        matcher = compile_glob(element) if has_magic(element) else None
        following: list[str] = []
        for prefix in frontier:
            directory = scoped_resolve(context.root, prefix)
            if matcher is None:
                names = [element]
            elif directory.is_dir():
                names = [e.name for e in _sorted_entries(directory) if matcher.fullmatch(e.name)]
            else:
                names = []
            following.extend(prefix + name if last else prefix + name + "/" for name in names)
        frontier = following
    found = (_lookup(context, rel) for rel in frontier)
    return [match for match in found if match is not None]


def _resolve_one(context: BuildContext, pattern: str) -> list[SourceMatch]:
    cleaned = clean(pattern)
    if escapes_root(cleaned):
        raise ContextError(f"forbidden path outside the build context: {pattern}")
    rel = cleaned.lstrip("/") or "."
    if rel == ".":
        return [SourceMatch(".", context.root, True)]
    if has_magic(rel):
        return _glob(context, rel.split("/"))
    match = _lookup(context, rel)
    if match is None:
        raise _not_found(pattern)
    return [match]


def resolve_sources(context: BuildContext, patterns: Sequence[str]) -> list[SourceMatch]:
    """Expand the source patterns of one COPY/ADD into visible context paths, in order.

    Raises ContextError for a path outside the context, a malformed glob, a literal source
    that does not exist (or is ignored), or when the patterns together match nothing.
    """
    matches: list[SourceMatch] = []
    for pattern in patterns:
        matches.extend(_resolve_one(context, pattern))
    if not matches and patterns:
        raise _not_found(patterns[0])
    return matches


def walk_source(context: BuildContext, match: SourceMatch) -> Iterator[tuple[str, Path]]:
    """Yield ``(path relative to the source, absolute path)`` for everything under a directory.

    Depth-first, each directory's entries sorted by name, a directory before its contents;
    ignored entries are skipped, symlinks are yielded and not followed. A file source yields
    nothing (the match itself is the whole copy).
    """
    if not match.is_dir:
        return
    rel = _context_rel(context.root, match.abs_path)
    prefix = "" if rel == "." else rel + "/"
    yield from _walk(context.ignore, match.abs_path, prefix, "")
