"""Content checksums change exactly when what COPY would produce changes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kiln.context import LocalContext, checksum_sources, open_context, resolve_sources
from tests.context.conftest import FILES, LINKS, make_tree


def _sum(root: Path, patterns: list[str]) -> str:
    context = open_context(str(root))
    return checksum_sources(context, resolve_sources(context, patterns))


def _write(rel: str, text: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / rel).write_text(text)

    return change


def _touch(rel: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        os.utime(root / rel, (1, 1))

    return change


def _chmod(rel: str, mode: int) -> Callable[[Path], None]:
    return lambda root: os.chmod(root / rel, mode)


def _relink(rel: str, target: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).symlink_to(target)

    return change


def _rename(old: str, new: str) -> Callable[[Path], None]:
    def change(root: Path) -> None:
        (root / old).rename(root / new)

    return change


# (description, COPY sources, change to the context, does the checksum change?)
CASES: list[tuple[str, list[str], Callable[[Path], None], bool]] = [
    ("content", ["src"], _write("src/main.py", "changed"), True),
    ("same size content", ["src"], _write("src/main.py", "MAIN"), True),
    ("mode", ["src"], _chmod("src/main.py", 0o755), True),
    ("dir mode", ["src"], _chmod("src/sub", 0o700), True),
    ("symlink target", ["src"], _relink("src/up", "../b.txt"), True),
    ("rename", ["src"], _rename("src/util.py", "src/util2.py"), True),
    ("new file", ["src"], _write("src/new.py", ""), True),
    ("mtime only", ["src"], _touch("src/main.py"), False),
    ("outside the sources", ["src"], _write("a.txt", "other"), False),
    ("ignored file", ["."], _write("secret.txt", "rotated"), False),
    ("ignored in excluded dir", ["build"], _write("build/drop.txt", "x"), False),
    ("re-included file", ["build"], _write("build/keep.txt", "x"), True),
    ("followed top-level link", ["link_to_a"], _write("a.txt", "new"), True),
]


@pytest.mark.parametrize(("what", "sources", "change", "differs"), CASES)
def test_checksum_tracks_copy_result(
    tmp_path: Path,
    what: str,
    sources: list[str],
    change: Callable[[Path], None],
    differs: bool,
) -> None:
    root = make_tree(tmp_path / "ctx", FILES, LINKS)
    before = _sum(root, sources)
    change(root)
    assert (_sum(root, sources) != before) is differs, what


def test_checksum_format_and_source_names(context: LocalContext) -> None:
    digest = checksum_sources(context, resolve_sources(context, ["a.txt"]))
    assert digest.startswith("sha256:") and len(digest) == 71
    via_link = checksum_sources(context, resolve_sources(context, ["link_to_a"]))
    assert via_link != digest  # the name at the destination differs
