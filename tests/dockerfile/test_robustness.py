"""Hostile input gets a ``Dockerfile:LINE: what is wrong`` error, never another exception.

Regression cases of issue 11.6 (fuzzing found ``UnicodeDecodeError``, uncaught
``ExpansionError`` in FROM lines and global ARG defaults, and ``RecursionError`` on deeply
nested ``${...}``) and of the fuzz target in ``test_fuzz.py``.
"""

from __future__ import annotations

import re

import pytest

from kiln.dockerfile import (
    MAX_NESTING,
    ExpansionError,
    check_from_lines,
    expand_word,
    global_args,
    parse,
)
from kiln.errors import DockerfileError


def located(line: int, message: str) -> str:
    return "^" + re.escape(f"Dockerfile:{line}: {message}")


@pytest.mark.parametrize(
    ("data", "line", "message"),
    [
        (b"FROM scratch\nLABEL a=\xff\n", 2, "not valid UTF-8: byte 0xff at column 9"),
        (b"\xc3\x28", 1, "not valid UTF-8: byte 0xc3 at column 1"),
        (b"FROM scratch\n\n\nRUN echo \xe2\x82\n", 4, "byte 0xe2 at column 10"),
        (b"FROM scratch\r\nRUN a\\\r\n  b \xed\xa0\x80\r\n", 3, "byte 0xed at column 5"),
    ],
)
def test_invalid_utf8_names_line_and_column(data: bytes, line: int, message: str) -> None:
    with pytest.raises(DockerfileError, match=re.escape(message)) as caught:
        parse(data)
    assert caught.value.line == line and caught.value.file == "Dockerfile"


def test_utf16_file_gets_a_hint() -> None:
    with pytest.raises(DockerfileError, match="looks like UTF-16") as caught:
        parse("FROM scratch\n".encode("utf-16"))
    assert caught.value.line == 1


def test_utf8_bytes_parse_like_text() -> None:
    text = "\ufeffFROM scratch\nLABEL name=\u00e9t\u00e9 \u2603=snow\n"
    assert parse(text.encode()) == parse(text)


def nested(depth: int, inner: str = "x") -> str:
    return "${a:-" * depth + inner + "}" * depth


def test_nesting_within_the_limit_expands() -> None:
    assert expand_word(nested(MAX_NESTING), {}) == "x"
    assert expand_word(nested(MAX_NESTING, '"q"'), {}) == "q"


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 300, 5000])
def test_deeper_nesting_is_an_expansion_error(depth: int) -> None:
    with pytest.raises(ExpansionError, match="nested more than 64 levels"):
        expand_word(nested(depth), {})
    with pytest.raises(ExpansionError, match="nested more than 64 levels"):
        expand_word('"' + nested(depth) + '"', {})


def test_deep_nesting_in_a_heredoc_line_is_a_located_error() -> None:
    # The heredoc scan lexes the whole RUN line; past the limit it finds no marker (BuildKit,
    # with no limit, would), so the body is read as instructions and the first one is refused.
    assert parse(f"FROM scratch\nRUN echo {nested(MAX_NESTING)} <<EOF\nbody\nEOF\n")
    with pytest.raises(DockerfileError, match=located(3, "unknown instruction: body")):
        parse(f"FROM scratch\nRUN echo {nested(400)} <<EOF\nbody\nEOF\n")


def test_error_message_quotes_a_long_word_shortened() -> None:
    with pytest.raises(ExpansionError) as caught:
        expand_word("${" + "a" * 10_000 + "%", {})
    assert len(str(caught.value)) < 400


def meta_env(text: str, build_args: dict[str, str | None] | None = None) -> dict[str, str]:
    return global_args(parse(text), {"TARGETOS": "linux"}, build_args or {}, set())


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("ARG A=1\nARG B=${A:?x}${C:?required}\nFROM scratch\n", 2, "C: required"),
        ("ARG A=${A\nFROM scratch\n", 1, "missing '}'"),
        ("ARG A=" + nested(300) + "\nFROM scratch\n", 1, "nested more than 64"),
    ],
)
def test_global_arg_default_errors_are_located(text: str, line: int, message: str) -> None:
    with pytest.raises(DockerfileError, match=located(line, "failed to process")) as caught:
        meta_env(text)
    assert message in str(caught.value)


def test_global_arg_default_is_not_expanded_when_a_build_arg_is_given() -> None:
    # BuildKit: the default is only evaluated when used, so ARG A=${A:?} works with --build-arg.
    assert meta_env("ARG A=${A:?}\nFROM scratch\n", {"A": "given"})["A"] == "given"


def test_global_arg_defaults_see_earlier_values_and_predefined_args() -> None:
    env = meta_env("ARG A=x\nARG B=${A}-${TARGETOS}\nFROM scratch\n")
    assert (env["A"], env["B"]) == ("x", "x-linux")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("FROM scratch\nFROM ${IMG:?set-IMG}\n", 2, "failed to process '${IMG:?set-IMG}'"),
        ("FROM ${IMG\n", 1, "failed to process '${IMG': syntax error: missing '}'"),
        ("FROM --platform=${P:?} scratch\n", 1, "failed to process '${P:?}'"),
        ("FROM scratch\nFROM " + nested(100) + "\n", 2, "failed to process"),
        ("ARG E=\nFROM $E\n", 2, "base name ($E) should not be blank"),
    ],
)
def test_from_line_errors_are_located(text: str, line: int, message: str) -> None:
    dockerfile = parse(text)
    with pytest.raises(DockerfileError, match=located(line, message)):
        check_from_lines(dockerfile, global_args(dockerfile, {}, {}, set()))


def test_from_lines_use_the_escape_directive() -> None:
    dockerfile = parse("# escape=`\nARG V=1\nFROM img:${V}`\\\n")
    check_from_lines(dockerfile, global_args(dockerfile, {}, {}, set()))  # no error
