"""Whole-file behaviour: directives, line handling, stages, warnings, and the JSON form."""

from __future__ import annotations

import json

import pytest

from kiln.dockerfile import (
    ArgInstruction,
    CopyInstruction,
    Dockerfile,
    EnvInstruction,
    RunInstruction,
    WorkdirInstruction,
    parse,
)

MULTI_STAGE = """\
# syntax=docker/dockerfile:1.7
# check=skip=JSONArgsRecommended
ARG BASE=alpine
ARG VERSION
FROM ${BASE}:3.19 AS build
RUN make
FROM build AS test
RUN make test
FROM scratch
COPY --from=build /out /
"""


def test_stages_meta_args_and_directives() -> None:
    df = parse(MULTI_STAGE)
    assert df.directives == {"syntax": "docker/dockerfile:1.7", "check": "skip=JSONArgsRecommended"}
    assert [a.args for a in df.meta_args] == [(("BASE", "alpine"),), (("VERSION", None),)]
    assert [(s.name, s.index, s.from_.image) for s in df.stages] == [
        ("build", 0, "${BASE}:3.19"),
        ("test", 1, "build"),
        (None, 2, "scratch"),
    ]
    assert [len(s.instructions) for s in df.stages] == [1, 1, 1]
    copy = df.stages[2].instructions[0]
    assert isinstance(copy, CopyInstruction) and copy.from_ == "build"
    assert df.stage("TEST") is df.stages[1]
    assert df.stage("2") is df.stages[2]
    assert df.stage("nope") is None


def test_arg_inside_a_stage_is_not_a_meta_arg() -> None:
    df = parse("ARG A\nFROM x\nARG B\n")
    assert [a.args[0][0] for a in df.meta_args] == ["A"]
    assert isinstance(df.stages[0].instructions[0], ArgInstruction)


DIRECTIVE_CASES: list[tuple[str, dict[str, str], str]] = [
    ("# escape=`\nFROM a\n", {"escape": "`"}, "`"),
    ("#escape = \\\nFROM a\n", {"escape": "\\"}, "\\"),
    ("# ESCAPE=`\nFROM a\n", {"escape": "`"}, "`"),
    ("# syntax=x\n# escape=`\nFROM a\n", {"syntax": "x", "escape": "`"}, "`"),
    # an unknown directive ends the directive block, so the escape is a plain comment
    ("# foo=bar\n# escape=`\nFROM a\n", {}, "\\"),
    # a blank line ends it too
    ("\n# escape=`\nFROM a\n", {}, "\\"),
    # a comment that is not a directive ends it too
    ("# hello\n# escape=`\nFROM a\n", {}, "\\"),
    # after the first instruction, directives are comments
    ("FROM a\n# escape=`\n", {}, "\\"),
    ("\ufeff# escape=`\nFROM a\n", {"escape": "`"}, "`"),
]


@pytest.mark.parametrize(("text", "directives", "escape"), DIRECTIVE_CASES)
def test_directives(text: str, directives: dict[str, str], escape: str) -> None:
    df = parse(text)
    assert df.directives == directives
    assert df.escape == escape


def test_backtick_escape_continues_lines_and_leaves_backslashes() -> None:
    df = parse("# escape=`\nFROM a\nRUN dir c:\\ `\n  /s\nWORKDIR c:\\windows\n")
    run, workdir = df.stages[0].instructions
    assert isinstance(run, RunInstruction) and run.command == "dir c:\\   /s"
    assert (run.line, run.end_line) == (3, 4)
    assert isinstance(workdir, WorkdirInstruction) and workdir.path == "c:\\windows"


def test_backtick_escape_in_env_words() -> None:
    df = parse('# escape=`\nFROM a\nENV a=x` y b="q`"r"\n')
    env = df.stages[0].instructions[0]
    assert isinstance(env, EnvInstruction)
    assert env.pairs == (("a", "x` y"), ("b", '"q`"r"'))


def test_crlf_and_bom_are_invisible() -> None:
    lf = parse("FROM a\nRUN echo a \\\n  b\nENV x=1\n")
    crlf = parse("\ufeffFROM a\r\nRUN echo a \\\r\n  b\r\nENV x=1\r\n")
    assert lf.to_dict()["stages"] == crlf.to_dict()["stages"]


def test_line_numbers_with_comments_blank_lines_and_heredocs() -> None:
    text = (
        "# c\n\nFROM a\n\n  # indented comment\nRUN <<EOF\nx\nEOF\n   ENV  a=1\nRUN a \\\n\\\n b\n"
    )
    df = parse(text)
    assert [(i.keyword, i.line, i.end_line) for i in df.stages[0].instructions] == [
        ("RUN", 6, 8),
        ("ENV", 9, 9),
        ("RUN", 10, 12),
    ]
    assert df.stages[0].from_.line == 3


def test_last_line_without_newline_and_trailing_continuation() -> None:
    df = parse("FROM a\nRUN echo \\")
    run = df.stages[0].instructions[0]
    assert isinstance(run, RunInstruction) and run.command == "echo"


def test_source_is_the_raw_text_and_original_the_joined_line() -> None:
    df = parse("FROM a\nRUN --network=none echo \\\n  # gone\n  hi\nRUN <<EOF\nbody\nEOF\n")
    first, second = df.stages[0].instructions
    assert first.source == "RUN --network=none echo \\\n  # gone\n  hi\n"
    assert first.original == "RUN --network=none echo   hi"
    assert isinstance(first, RunInstruction) and first.command == "echo   hi"
    assert second.source == "RUN <<EOF\nbody\nEOF\n"
    assert second.original == "RUN <<EOF"


def test_heredoc_terminator_must_match_the_whole_line() -> None:
    df = parse("FROM a\nRUN <<EOF\n EOF\nEOF2\nEOF\n")
    run = df.stages[0].instructions[0]
    assert isinstance(run, RunInstruction)
    assert run.heredocs[0].content == " EOF\nEOF2\n"


def test_heredoc_only_for_run_copy_add() -> None:
    df = parse("FROM a\nENV a=<<EOF\nRUN true\n")
    assert [i.keyword for i in df.stages[0].instructions] == ["ENV", "RUN"]


WARNING_CASES: list[tuple[str, list[tuple[int, str]]]] = [
    ("FROM a\nMAINTAINER me\n", [(2, "MaintainerDeprecated")]),
    ("FROM a\nENV k v\n", [(2, "LegacyKeyValueFormat")]),
    ("FROM a\nLABEL k v\n", [(2, "LegacyKeyValueFormat")]),
    ("FROM a\nENV k=v\nLABEL a=b\n", []),
    ("FROM a\nRUN a \\\n\n b\n", [(2, "NoEmptyContinuation")]),
    ("FROM a AS Build\n", [(1, "StageNameCasing")]),
    ("FROM a as b\n", [(1, "FromAsCasing")]),
    ("from a AS b\n", [(1, "FromAsCasing")]),
    ("FROM a AS b\n", []),
    ('FROM a\nCMD run\nENTRYPOINT ["x"]\n', [(2, "JSONArgsRecommended")]),
]


@pytest.mark.parametrize(("text", "expected"), WARNING_CASES)
def test_warnings_are_data(text: str, expected: list[tuple[int, str]]) -> None:
    df = parse(text)
    assert [(w.line, w.rule) for w in df.warnings] == expected
    assert all(w.message for w in df.warnings)


def test_to_dict_is_json_and_complete() -> None:
    df = parse(MULTI_STAGE + "RUN <<EOF\nx\nEOF\n")
    dumped = json.loads(json.dumps(df.to_dict()))
    assert dumped["directives"]["syntax"] == "docker/dockerfile:1.7"
    assert dumped["meta_args"][0]["fields"] == {"args": [["BASE", "alpine"]]}
    last_stage = dumped["stages"][2]
    assert last_stage["from"]["fields"] == {"image": "scratch", "name": None, "platform": None}
    copy, run = last_stage["instructions"]
    assert copy["keyword"] == "COPY" and copy["flags"] == {"from": "build"}
    assert copy["fields"]["from"] == "build"
    assert (run["line"], run["end_line"], run["original"]) == (11, 13, "RUN <<EOF")
    assert run["fields"]["heredocs"] == [
        {"name": "EOF", "content": "x\n", "expand": True, "chomp": False, "fd": 0}
    ]


def test_parse_result_is_a_frozen_value() -> None:
    df = parse("FROM a\n")
    assert isinstance(df, Dockerfile)
    with pytest.raises(AttributeError):
        df.stages = ()  # type: ignore[misc]
