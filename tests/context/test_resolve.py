"""COPY/ADD source resolution and directory walks over a real context tree."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.context import IgnoreMatcher, LocalContext, resolve_sources, walk_source
from kiln.errors import ContextError

SYMLINKED_PY = [
    ("abs_link/main.py", "src/main.py", False),
    ("abs_link/util.py", "src/util.py", False),
    ("link_to_src/main.py", "src/main.py", False),
    ("link_to_src/util.py", "src/util.py", False),
    ("src/main.py", "src/main.py", False),
    ("src/util.py", "src/util.py", False),
]

# (patterns, expected [(rel_path, path under the context it really is, is_dir)])
RESOLVE_CASES: list[tuple[list[str], list[tuple[str, str, bool]]]] = [
    (["a.txt"], [("a.txt", "a.txt", False)]),
    (["/a.txt"], [("a.txt", "a.txt", False)]),
    (["./src/../a.txt"], [("a.txt", "a.txt", False)]),
    (["/../a.txt"], [("a.txt", "a.txt", False)]),  # ".." stops at a rooted path
    (["b.txt", "a.txt"], [("b.txt", "b.txt", False), ("a.txt", "a.txt", False)]),
    (["*.txt"], [("a.txt", "a.txt", False), ("b.txt", "b.txt", False)]),  # secret.txt ignored
    (["?.txt"], [("a.txt", "a.txt", False), ("b.txt", "b.txt", False)]),
    (["[^a].txt"], [("b.txt", "b.txt", False)]),
    (["src/*.py"], [("src/main.py", "src/main.py", False), ("src/util.py", "src/util.py", False)]),
    (["*/*.py"], SYMLINKED_PY),  # a symlinked directory matches like a directory
    (["**/*.py"], SYMLINKED_PY),  # "**" is not recursive in COPY sources: it is "*"
    (["s*/s*"], [("src/sub", "src/sub", True)]),
    (["src"], [("src", "src", True)]),
    (["src/"], [("src", "src", True)]),
    (["."], [(".", ".", True)]),
    (["/"], [(".", ".", True)]),
    (["link_to_a"], [("link_to_a", "a.txt", False)]),
    (["abs_link"], [("abs_link", "src", True)]),
    (["src/up"], [("src/up", "a.txt", False)]),
    (["link_to_src/sub/deep.py"], [("link_to_src/sub/deep.py", "src/sub/deep.py", False)]),
    (["src/debug.log"], [("src/debug.log", "src/debug.log", False)]),
    (["build/keep.txt"], [("build/keep.txt", "build/keep.txt", False)]),
    (["build"], [("build", "build", True)]),  # exists: something inside is re-included
    (["build/*"], [("build/keep.txt", "build/keep.txt", False)]),
    (["odd/\\[x\\].txt"], [("odd/[x].txt", "odd/[x].txt", False)]),
    (["odd/[[]x].txt"], [("odd/[x].txt", "odd/[x].txt", False)]),
    (["a.txt", "*.log"], [("a.txt", "a.txt", False)]),  # an empty wildcard is fine with others
]


@pytest.mark.parametrize(("patterns", "expected"), RESOLVE_CASES)
def test_resolve_sources(
    context: LocalContext, patterns: list[str], expected: list[tuple[str, str, bool]]
) -> None:
    got = [
        (m.rel_path, m.abs_path.relative_to(context.root).as_posix(), m.is_dir)
        for m in resolve_sources(context, patterns)
    ]
    assert got == expected


NOT_FOUND = "file not found in build context or excluded by .dockerignore"

# (patterns, message fragment)
ERROR_CASES: list[tuple[list[str], str]] = [
    (["missing"], "stat missing: file does not exist"),
    (["src/missing.py"], "stat src/missing.py: file does not exist"),
    (["secret.txt"], NOT_FOUND),  # ignored files are invisible
    (["build/drop.txt"], NOT_FOUND),
    (["app.log"], NOT_FOUND),
    (["*.log"], "stat *.log: file does not exist"),  # nothing matched at all
    (["a.txt/x"], NOT_FOUND),
    (["escape_link"], NOT_FOUND),  # resolves inside the context, where nothing is
    (["../x"], "forbidden path outside the build context: ../x"),
    (["src/../../x"], "forbidden path outside the build context: src/../../x"),
    (["a.txt", ".."], "forbidden path outside the build context: .."),
    (["src/[z"], "syntax error in pattern"),
    (["src/a\\"], "syntax error in pattern"),  # a trailing escape
]


@pytest.mark.parametrize(("patterns", "fragment"), ERROR_CASES)
def test_resolve_errors(context: LocalContext, patterns: list[str], fragment: str) -> None:
    with pytest.raises(ContextError) as info:
        resolve_sources(context, patterns)
    assert fragment in str(info.value)


def test_missing_source_message_mimics_docker(context: LocalContext) -> None:
    with pytest.raises(ContextError) as info:
        resolve_sources(context, ["nope.txt"])
    assert info.value.message == (
        "COPY failed: file not found in build context or excluded by .dockerignore: "
        "stat nope.txt: file does not exist"
    )


def _walk(context: LocalContext, pattern: str) -> list[str]:
    [match] = resolve_sources(context, [pattern])
    return [rel for rel, _ in walk_source(context, match)]


def test_walk_root_skips_ignored_and_keeps_reincluded(context: LocalContext) -> None:
    assert _walk(context, ".") == [
        ".dockerignore",
        "Dockerfile",
        "a.txt",
        "abs_link",
        "b.txt",
        "build",  # excluded, yet sent: it holds a re-included file
        "build/keep.txt",
        "c.md",
        "escape_link",
        "link_to_a",
        "link_to_src",  # a symlink: not descended into
        "odd",
        "odd/[x].txt",
        "src",
        "src/debug.log",
        "src/main.py",
        "src/sub",
        "src/sub/deep.py",
        "src/up",
        "src/util.py",
    ]


def test_walk_directory_source_is_relative_to_it(context: LocalContext) -> None:
    expected = ["debug.log", "main.py", "sub", "sub/deep.py", "up", "util.py"]
    assert _walk(context, "src") == expected
    assert _walk(context, "link_to_src") == expected  # followed at the top, then walked
    assert _walk(context, "build") == ["keep.txt"]


def test_walk_yields_symlinks_as_symlinks(context: LocalContext) -> None:
    [match] = resolve_sources(context, ["src"])
    entries = dict(walk_source(context, match))
    assert entries["up"].is_symlink()
    assert os.readlink(entries["up"]) == "../a.txt"
    assert entries["main.py"] == context.root / "src" / "main.py"


def test_walk_of_a_file_source_yields_nothing(context: LocalContext) -> None:
    [match] = resolve_sources(context, ["a.txt"])
    assert list(walk_source(context, match)) == []


def test_ignore_rules_apply_to_the_real_path_behind_a_symlink(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    (root / "real").mkdir(parents=True)
    (root / "real" / "x").write_text("x")
    (root / "lnk").symlink_to("real")
    context = LocalContext(root, ignore=IgnoreMatcher.from_lines(["real"]))
    with pytest.raises(ContextError, match="file not found"):
        resolve_sources(context, ["lnk"])
    with pytest.raises(ContextError, match="file not found"):
        resolve_sources(LocalContext(root, IgnoreMatcher.from_lines(["lnk"])), ["lnk/x"])


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "loop").symlink_to("loop")
    with pytest.raises(ContextError, match="symbolic links"):
        resolve_sources(LocalContext(root), ["loop"])


@pytest.mark.parametrize(("hops", "resolves"), [(40, True), (41, False)])
def test_symlink_chains_stop_at_linux_limit(tmp_path: Path, hops: int, resolves: bool) -> None:
    # The context follows links with kiln.fs.secure_join, so it gives up where the kernel does.
    root = tmp_path / "ctx"
    root.mkdir()
    (root / "file").write_text("x")
    (root / "l0").symlink_to("file")
    for n in range(1, hops):
        (root / f"l{n}").symlink_to(f"l{n - 1}")
    last = f"l{hops - 1}"
    if resolves:
        [match] = resolve_sources(LocalContext(root), [last])
        assert match.abs_path == root / "file"
    else:
        with pytest.raises(ContextError, match="too many levels of symbolic links"):
            resolve_sources(LocalContext(root), [last])
