"""A small build context on disk, shared by the resolve/walk/checksum tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.context import LocalContext, open_context
from tests.support.source_servers import GIT_CREDENTIALS, GitFixture

__all__ = ["GIT_CREDENTIALS", "GitFixture", "make_tree"]

IGNORE = """\
# secrets and logs stay out
secret.txt
*.log
build
!build/keep.txt
"""

FILES = {
    "Dockerfile": "FROM scratch\n",
    ".dockerignore": IGNORE,
    "a.txt": "a",
    "b.txt": "b",
    "c.md": "c",
    "secret.txt": "s",
    "app.log": "log",
    "src/main.py": "main",
    "src/util.py": "util",
    "src/debug.log": "not ignored: *.log is anchored at the root",
    "src/sub/deep.py": "deep",
    "build/keep.txt": "keep",
    "build/drop.txt": "drop",
    "odd/[x].txt": "odd",
}

LINKS = {
    "link_to_a": "a.txt",
    "link_to_src": "src",
    "abs_link": "/src",  # absolute targets resolve inside the context
    "escape_link": "../../../../etc/passwd",  # ... and so does this one: to nothing
    "src/up": "../a.txt",
}


def make_tree(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    for rel, target in (links or {}).items():
        os.symlink(target, root / rel)
    return root


@pytest.fixture
def context_dir(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "ctx", FILES, LINKS)


@pytest.fixture
def context(context_dir: Path) -> LocalContext:
    opened = open_context(str(context_dir))
    assert isinstance(opened, LocalContext)
    return opened
