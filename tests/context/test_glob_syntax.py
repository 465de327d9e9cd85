"""Go path cleaning and ``filepath.Match`` syntax, from the cases in Go's own tests."""

from __future__ import annotations

import pytest

from kiln.context.globbing import compile_glob, has_magic
from kiln.context.gopath import clean, escapes_root
from kiln.errors import ContextError

CLEAN_CASES = [
    ("", "."),
    (".", "."),
    ("/", "/"),
    ("//a//b/", "/a/b"),
    ("a/./b", "a/b"),
    ("a/b/..", "a"),
    ("a/../..", ".."),
    ("../a/../b", "../b"),
    ("/../a", "/a"),
    ("./x/", "x"),
]


@pytest.mark.parametrize(("path", "cleaned"), CLEAN_CASES)
def test_clean_like_go(path: str, cleaned: str) -> None:
    assert clean(path) == cleaned


@pytest.mark.parametrize(
    ("path", "escapes"), [("..", True), ("../a", True), ("..a", False), ("a/..b", False)]
)
def test_escapes_root(path: str, escapes: bool) -> None:
    assert escapes_root(path) is escapes


# (pattern, name, matches?) -- Go's path/filepath match_test.go
MATCH_CASES = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a\u263ab", True),
    ("a[^a]b", "a\u263ab", True),
    ("a???b", "a\u263ab", False),
    ("[a-\u03b6]*", "\u03b1", True),
    ("*[a-\u03b6]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[z-a]", "m", False),  # an inverted range is legal and matches nothing
    ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "name", "matches"), MATCH_CASES)
def test_match_like_go(pattern: str, name: str, matches: bool) -> None:
    assert (compile_glob(pattern).fullmatch(name) is not None) is matches


BAD = ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "[\\"]


@pytest.mark.parametrize("pattern", BAD)
def test_bad_patterns_are_errors(pattern: str) -> None:
    with pytest.raises(ContextError, match="syntax error in pattern"):
        compile_glob(pattern)


@pytest.mark.parametrize(
    ("pattern", "magic"), [("a", False), ("a*", True), ("a?", True), ("[a]", True), ("a\\b", True)]
)
def test_has_magic(pattern: str, magic: bool) -> None:
    assert has_magic(pattern) is magic
