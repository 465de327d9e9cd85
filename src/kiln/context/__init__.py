"""kiln.context: where COPY and ADD get their files.

A build context is a local directory plus Docker's ``.dockerignore`` rules, whatever it was
opened from (a directory, a tarball from a file, stdin or a URL, a git repository, a cloud
bucket). This package opens contexts (``open_context``), matches ignore patterns
(``IgnoreMatcher``) and expands COPY/ADD source patterns (``resolve_sources``,
``walk_source``). It imports only ``kiln.errors`` and ``kiln.fs``.
"""

from kiln.context.giturl import GitOptions, GitSource, parse_git_spec
from kiln.context.ignore import IgnoreMatcher, IgnorePattern
from kiln.context.ignorefile import IGNORE_FILE_NAME, find_ignore_file
from kiln.context.resolve import SourceEntry, SourceMatch, resolve_sources, walk_source
from kiln.context.scoped import within_context
from kiln.context.sources import (
    BuildContext,
    LocalContext,
    WrappedContext,
    open_context,
)

__all__ = [
    "IGNORE_FILE_NAME",
    "BuildContext",
    "GitOptions",
    "GitSource",
    "IgnoreMatcher",
    "IgnorePattern",
    "LocalContext",
    "SourceEntry",
    "SourceMatch",
    "WrappedContext",
    "find_ignore_file",
    "open_context",
    "parse_git_spec",
    "resolve_sources",
    "walk_source",
    "within_context",
]
