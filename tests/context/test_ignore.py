""".dockerignore matching against Docker's documented behaviour (moby/patternmatcher)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from kiln.context import IgnoreMatcher
from kiln.context.globbing import compile_glob
from kiln.errors import ContextError

# (ignore-file text, path, excluded?) -- examples from the Dockerfile reference's
# ".dockerignore file" section and the build-context docs, plus patternmatcher edge cases.
CASES: list[tuple[str, str, bool]] = [
    # "*/temp*": one level below the root only
    ("*/temp*", "somedir/temporary.txt", True),
    ("*/temp*", "somedir/temp", True),
    ("*/temp*", "somedir/temp/inside", True),
    ("*/temp*", "temporary.txt", False),
    ("*/temp*", "a/b/temporary.txt", False),
    # "*/*/temp*": exactly two levels below
    ("*/*/temp*", "somedir/subdir/temporary.txt", True),
    ("*/*/temp*", "somedir/temporary.txt", False),
    # "temp?": one character, root only
    ("temp?", "tempa", True),
    ("temp?", "tempb", True),
    ("temp?", "temp", False),
    ("temp?", "tempab", False),
    ("temp?", "dir/tempa", False),
    ("temp?", "temp/", False),
    # "**/*.go": every .go file, at any depth including the root
    ("**/*.go", "main.go", True),
    ("**/*.go", "a/b/c.go", True),
    ("**/*.go", "a/b/c.gox", False),
    ("**/*.go", "a/go", False),
    # "*.md" is anchored at the root, unlike gitignore
    ("*.md", "README.md", True),
    ("*.md", "docs/intro.md", False),
    ("docs/*.md", "docs/intro.md", True),
    ("docs/*.md", "docs/sub/intro.md", False),
    ("docs/*.md", "intro.md", False),
    # exceptions: the last matching line wins
    ("*.md\n!README.md", "README.md", False),
    ("*.md\n!README.md", "CHANGES.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-other.md", False),
    ("*.md\n!README*.md\nREADME-secret.md", "notes.md", True),
    ("*.md\nREADME-secret.md\n!README*.md", "README-secret.md", False),
    ("!a\na", "a", True),
    ("a\n!a", "a", False),
    # a directory pattern excludes everything under it; "!" reaches inside
    ("build", "build", True),
    ("build", "build/out/x.o", True),
    ("build", "builder", False),
    ("build\n!build/keep.txt", "build/keep.txt", False),
    ("build\n!build/keep.txt", "build/drop.txt", True),
    ("build\n!build/keep.txt", "build", True),
    ("build\n!build/keep.txt\nbuild/keep.txt", "build/keep.txt", True),
    ("build\n!build/keep.txt\nbuild", "build/keep.txt", True),
    ("**\n!src", "src/main.c", False),
    ("**\n!src", "other", True),
    # leading "/", "./", trailing "/" and other cleaning
    ("/foo", "foo", True),
    ("/foo", "a/foo", False),
    ("./foo", "foo", True),
    ("foo/", "foo/bar", True),
    ("a/../b", "b", True),
    ("a/../b", "a", False),
    ("a//b/./c", "a/b/c", True),
    ("!/keep\n", "keep", False),
    ("/", "anything", False),
    # "**" forms
    ("**", "a", True),
    ("**", "a/b/c", True),
    ("vendor/**", "vendor/x", True),
    ("vendor/**", "vendor", False),
    ("**/node_modules", "node_modules", True),
    ("**/node_modules", "a/b/node_modules/x.js", True),
    ("**/node_modules", "a/xnode_modules", False),
    ("**.txt", "x/b.txt", True),  # Docker's suffix fast path
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/xb", False),
    ("a/**", "a/x/y", True),
    # comments, blank lines, white space, BOM
    ("# comment\n\n   \nfoo", "foo", True),
    ("# foo", "# foo", False),
    (" # foo", "# foo", True),  # only column one starts a comment
    ("  foo  \r", "foo", True),
    ("\ufefffoo", "foo", True),
    # Go glob syntax
    ("[a-c].txt", "b.txt", True),
    ("[a-c].txt", "d.txt", False),
    ("[^a].txt", "a.txt", False),
    ("[^a].txt", "b.txt", True),
    ("[!a].txt", "!.txt", True),  # "!" is not negation in Go
    ("[!a].txt", "b.txt", False),
    ("\\*.txt", "*.txt", True),
    ("\\*.txt", "a.txt", False),
    ("file[.]txt", "file.txt", True),
    ("a.b", "axb", False),  # "." is literal
    ("a+(b)", "a+(b)", True),
    ("*", "a", True),
    ("*", "a/b", True),  # via its parent "a"
    ("*", ".hidden", True),
]


@pytest.mark.parametrize(("text", "path", "excluded"), CASES)
def test_docker_ignore_semantics(text: str, path: str, excluded: bool) -> None:
    matcher = IgnoreMatcher.from_lines(text.split("\n"))
    assert matcher.matches(path) is excluded


def test_context_root_is_never_excluded() -> None:
    assert not IgnoreMatcher.from_lines(["**", "*", "."]).matches(".")


@pytest.mark.parametrize("path", ["/foo", "./foo", "foo/", "foo//"])
def test_queried_paths_are_cleaned(path: str) -> None:
    assert IgnoreMatcher.from_lines(["foo"]).matches(path)


@pytest.mark.parametrize("bad", ["!", "! ", "[", "a[", "[]", "[a-]", "[-a]", "x\\", "[^]"])
def test_malformed_patterns_are_errors(bad: str) -> None:
    with pytest.raises(ContextError):
        IgnoreMatcher.from_lines([bad])


def test_from_file_reads_crlf_and_names_file_in_errors(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.write_bytes(b"\xef\xbb\xbf*.log\r\n!keep.log\r\n")
    matcher = IgnoreMatcher.from_file(good)
    assert matcher.matches("a.log")
    assert not matcher.matches("keep.log")
    bad = tmp_path / "bad"
    bad.write_text("ok\n[oops\n")
    with pytest.raises(ContextError, match="bad"):
        IgnoreMatcher.from_file(bad)
    with pytest.raises(ContextError, match="cannot read"):
        IgnoreMatcher.from_file(tmp_path / "missing")


# (patterns, excluded directory, may something below be re-included?)
PRUNE_CASES: list[tuple[list[str], str, bool]] = [
    (["build"], "build", False),  # no "!" at all
    (["build", "!build/keep.txt"], "build", True),
    (["build", "!build/keep.txt"], "build/sub", False),
    (["build", "!other/keep.txt"], "build", False),
    (["a", "!a/*/x"], "a/b", True),
    (["a", "!a/*/x"], "a/b/c", False),
    (["a", "!a"], "a/b", True),  # re-includes the ancestor itself
    (["**", "!**/*.go"], "deep/down", True),
    (["**", "!src/**"], "docs", False),
    (["**", "!src/**"], "src/x", True),
    (["*", "![ab]/keep"], "c", False),
    (["*", "![ab]/keep"], "b", True),
]


@pytest.mark.parametrize(("patterns", "directory", "expected"), PRUNE_CASES)
def test_may_contain_included(patterns: list[str], directory: str, expected: bool) -> None:
    assert IgnoreMatcher.from_lines(patterns).may_contain_included(directory) is expected


def test_pruning_is_sound_on_random_pattern_sets() -> None:
    """Whenever a directory may be skipped, nothing below it is in fact included."""
    names = ["a", "b", "ab"]
    paths = ["/".join(p) for depth in (1, 2, 3) for p in itertools.product(names, repeat=depth)]
    pieces = ["a", "b", "*", "?", "**", "a*", "[ab]", "ab"]
    rng = random.Random(1234)
    checked = 0
    for _ in range(300):
        lines = []
        for _ in range(rng.randint(1, 4)):
            pattern = "/".join(rng.choice(pieces) for _ in range(rng.randint(1, 3)))
            lines.append(("!" if rng.random() < 0.4 else "") + pattern)
        matcher = IgnoreMatcher.from_lines(lines)
        for directory in paths:
            if matcher.matches(directory) and not matcher.may_contain_included(directory):
                below = [p for p in paths if p.startswith(directory + "/")]
                assert all(matcher.matches(p) for p in below), (lines, directory)
                checked += 1
    assert checked > 100  # the property was really exercised


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("[Local-Only]", "invalid character class range l-O"),
        ("docs/[z-a]*", "invalid character class range z-a"),
        ("[^9-0]", "invalid character class range 9-0"),
        ("\\q", "invalid escape sequence \\q"),
        ("a\\8", "invalid escape sequence \\8"),
        ("\\1x", "invalid escape sequence \\1"),
        ("[\\b]", "invalid escape sequence \\b"),  # an assertion: not inside a class
        ("\\é", "invalid escape sequence \\é"),
        ("\\xzz", "invalid escape sequence \\x"),
    ],
)
def test_patterns_go_regexp_refuses_are_errors_with_their_line(pattern: str, reason: str) -> None:
    """moby/patternmatcher compiles patterns to Go regexps, which refuse these (Docker fails)."""
    with pytest.raises(ContextError) as caught:
        IgnoreMatcher.from_lines(["# comment", "ok.txt", "", pattern], "ctx/.dockerignore")
    message = caught.value.message
    assert message == f"ctx/.dockerignore:4: syntax error in pattern: {pattern!r} ({reason})"


@pytest.mark.parametrize(
    "pattern",
    ["[a-z]", "[a-a]", "\\d", "\\.", "\\*", "[\\d]", "\\b", "\\pL", "\\x41", "\\0", "\\12"],
)
def test_patterns_go_regexp_accepts_are_kept(pattern: str) -> None:
    assert IgnoreMatcher.from_lines([pattern]).patterns[0].text == pattern


def test_copy_exclude_patterns_follow_the_same_rules() -> None:
    with pytest.raises(ContextError, match=r"syntax error in pattern: .\[Local-Only\]."):
        IgnoreMatcher.from_patterns(["[Local-Only]"])


def test_copy_sources_still_accept_an_inverted_range() -> None:
    """COPY sources use filepath.Match only, where ``[z-a]`` is legal and matches nothing."""
    assert compile_glob("[z-a]").fullmatch("m") is None
