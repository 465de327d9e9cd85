"""Tables for the small pieces: word splitting, flags, Go durations, heredoc markers, patterns."""

from __future__ import annotations

import pytest

import kiln.dockerfile
from kiln.dockerfile.durations import DurationError, parse_duration
from kiln.dockerfile.flags import FlagError, FlagKind, parse_flags
from kiln.dockerfile.heredoc import HeredocMarker, markers_in_line, parse_marker
from kiln.dockerfile.shellpattern import replace, trim_prefix, trim_suffix
from kiln.dockerfile.words import (
    NotStringArrayError,
    extract_flags,
    parse_json_array,
    quote_aware_words,
    split_line,
)

QUOTE_AWARE = [
    ("a b  c", ["a", "b", "c"]),
    ('a="x y" b', ['a="x y"', "b"]),
    ("a='x \" y'", ["a='x \" y'"]),
    ('a="x \\" y"', ['a="x \\" y"']),
    ("a\\ b c", ["a\\ b", "c"]),
    ('""', ['""']),
    ("x\\", ["x"]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), QUOTE_AWARE)
def test_quote_aware_words(text: str, expected: list[str]) -> None:
    assert quote_aware_words(text) == expected


FLAG_SPLITS = [
    ("--a=1 --b rest of it", ("rest of it", ["--a=1", "--b"])),
    ("plain --x", ("plain --x", [])),
    ("-- --x y", (" --x y", [])),
    ('--chown="a b" x', ("x", ["--chown=a b"])),
    ("--a='' x", ("x", ["--a="])),
    ("--x=a\\ b y", ("y", ["--x=a b"])),
    ("--only", ("", ["--only"])),
]


@pytest.mark.parametrize(("text", "expected"), FLAG_SPLITS)
def test_extract_flags(text: str, expected: tuple[str, list[str]]) -> None:
    assert extract_flags(text) == expected


def test_split_line_keeps_keyword_case_and_trims_rest() -> None:
    split = split_line("  copy --from=a   x  y  ")
    assert (split.keyword, split.flags, split.rest) == ("copy", ("--from=a",), "x  y")


JSON_CASES: list[tuple[str, list[str] | None]] = [
    ('["a", "b"]', ["a", "b"]),
    ('  ["a"]  ', ["a"]),
    ("[]", []),
    ('["\\u0041\\t"]', ["A\t"]),
    ("[a]", None),
    ('{"a": 1}', None),
    ('"a"', None),
    ('["a",]', None),
]


@pytest.mark.parametrize(("text", "expected"), JSON_CASES)
def test_parse_json_array(text: str, expected: list[str] | None) -> None:
    assert parse_json_array(text) == expected


@pytest.mark.parametrize("text", ['["a", 1]', "[null]", '[["a"]]', "[true]"])
def test_json_array_of_non_strings_is_an_error(text: str) -> None:
    with pytest.raises(NotStringArrayError):
        parse_json_array(text)


SPEC = {"s": FlagKind.STRING, "m": FlagKind.STRINGS, "b": FlagKind.BOOL}
FLAG_CASES: list[tuple[tuple[str, ...], dict[str, str] | str]] = [
    (("--s=1",), {"s": "1"}),
    (("--s=",), {"s": ""}),
    (("--s=a=b",), {"s": "a=b"}),
    (("--m=1", "--m=2"), {"m": "2"}),
    (("--b",), {"b": "true"}),
    (("--b=False",), {"b": "false"}),
    (("--s=1", "--", "--zzz"), {"s": "1"}),
    (("--s",), "missing a value on flag: s"),
    (("--b=",), "missing a value on flag: b"),
    (("--b=yes",), "expecting boolean value for flag b, not: yes"),
    (("--s=1", "--s=2"), "duplicate flag specified: s"),
    (("--b", "--b"), "duplicate flag specified: b"),
    (("--zz",), "unknown flag: zz"),
]


@pytest.mark.parametrize(("words", "expected"), FLAG_CASES)
def test_parse_flags(words: tuple[str, ...], expected: dict[str, str] | str) -> None:
    if isinstance(expected, str):
        with pytest.raises(FlagError, match=expected):
            parse_flags(words, SPEC)
    else:
        assert parse_flags(words, SPEC).values == expected


def test_repeated_flags_keep_every_value() -> None:
    assert parse_flags(("--m=1", "--m=2"), SPEC).strings("m") == ("1", "2")


DURATIONS: list[tuple[str, int | None]] = [
    ("0", 0),
    ("1ns", 1),
    ("1us", 1_000),
    ("1\u00b5s", 1_000),
    ("1.5ms", 1_500_000),
    ("30s", 30_000_000_000),
    ("1m30s", 90_000_000_000),
    ("2h45m", 9_900_000_000_000),
    (".5s", 500_000_000),
    ("1.s", 1_000_000_000),
    ("-1s", -1_000_000_000),
    ("", None),
    ("10", None),
    ("1d", None),
    ("s", None),
    ("1s2", None),
    ("3000000h", None),
]


@pytest.mark.parametrize(("text", "nanos"), DURATIONS)
def test_parse_duration(text: str, nanos: int | None) -> None:
    if nanos is None:
        with pytest.raises(DurationError):
            parse_duration(text)
    else:
        assert parse_duration(text) == nanos


MARKERS: list[tuple[str, HeredocMarker | None]] = [
    ("<<EOF", HeredocMarker("EOF", expand=True, chomp=False)),
    ("<<-EOF", HeredocMarker("EOF", expand=True, chomp=True)),
    ('<<"EOF"', HeredocMarker("EOF", expand=False, chomp=False)),
    ("<<-'EOF'", HeredocMarker("EOF", expand=False, chomp=True)),
    ("<<E'O'F", HeredocMarker("EOF", expand=False, chomp=False)),
    ("2<<EOF", HeredocMarker("EOF", expand=True, chomp=False, fd=2)),
    ("<<$X", HeredocMarker("$X", expand=True, chomp=False)),
    ("<<", None),
    ("<<-", None),
    ("a<<EOF", None),
    ("<<<EOF", None),
    ('<<"two words"', HeredocMarker("two words", expand=False, chomp=False)),
]


@pytest.mark.parametrize(("word", "expected"), MARKERS)
def test_parse_marker(word: str, expected: HeredocMarker | None) -> None:
    assert parse_marker(word) == expected


def test_markers_in_line_in_order_and_ignoring_quoted_ones() -> None:
    names = [m.name for m in markers_in_line("RUN <<A cat '<<X' - <<-B > /x")]
    assert names == ["A", "B"]


PATTERNS = [
    (trim_prefix("*/", "/a/b/c", greedy=False), "a/b/c"),
    (trim_prefix("*/", "/a/b/c", greedy=True), "c"),
    (trim_suffix("/*", "/a/b/c", greedy=False), "/a/b"),
    (trim_suffix("/*", "/a/b/c", greedy=True), ""),
    (trim_prefix("[a]", "[a]x", greedy=False), "x"),
    (trim_prefix("a.c", "abcd", greedy=False), "abcd"),
    (replace("o", "0", "foo", replace_all=False), "f0o"),
    (replace("o", "0", "foo", replace_all=True), "f00"),
    (replace("o", "$1\\0", "foo", replace_all=True), "f$1\\0$1\\0"),
]


@pytest.mark.parametrize(("actual", "expected"), PATTERNS)
def test_shell_patterns(actual: str, expected: str) -> None:
    assert actual == expected


def test_public_names_exist() -> None:
    for name in kiln.dockerfile.__all__:
        assert hasattr(kiln.dockerfile, name), name
    assert not hasattr(kiln.dockerfile, "Warning")  # no alias shadowing the builtin
