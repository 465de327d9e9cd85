"""`kiln parse`'s engine: a Dockerfile on disk -> the parsed document as JSON-ready data.

Why in builder: the CLI may only import from `kiln.builder` (see docs/internals.md), and reading a
file is I/O that the pure `kiln.dockerfile` package does not do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiln.dockerfile import parse
from kiln.errors import ContextError


def describe_dockerfile(path: Path) -> dict[str, Any]:
    """Parse the Dockerfile at path; return `Dockerfile.to_dict()` (stages, line ranges...)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContextError(f"cannot read Dockerfile {path}: {exc.strerror}") from exc
    return parse(data, str(path)).to_dict()
