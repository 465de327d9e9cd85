"""Error cases: Dockerfile text -> DockerfileError with the expected line and message fragment."""

from __future__ import annotations

import pytest

from kiln.dockerfile import parse
from kiln.errors import DockerfileError

ERRORS: list[tuple[str, int, str]] = [
    ("", 1, "no build stage"),
    ("# just a comment\n\n", 2, "no build stage"),
    ("ARG a=1\nARG b\n", 2, "no build stage"),
    ("FROM\n", 1, "FROM requires either one or three arguments"),
    ("FROM a b\n", 1, "FROM requires either one or three arguments"),
    ("FROM a AS b c\n", 1, "FROM requires either one or three arguments"),
    ("FROM a AS 1st\n", 1, "invalid name for build stage"),
    ("FROM a AS x!\n", 1, "invalid name for build stage"),
    ("FROM a AS x\nFROM b AS X\n", 2, 'duplicate stage name "x"'),
    ("RUN true\nFROM a\n", 1, "no build stage in current context"),
    ("ARG x\nENV a=b\nFROM a\n", 2, "ENV before the first FROM"),
    ("FROM a\nFOO bar\n", 2, "unknown instruction: FOO"),
    ("FROM a\n\nRUNN x\n", 3, "unknown instruction: RUNN"),
    ("FROM a\nRUN\n", 2, "RUN requires at least one argument"),
    ("FROM a\nRUN <<EOF\necho\n", 2, "unterminated heredoc"),
    ("FROM a\nRUN <<A <<B\na\nA\nb\n", 2, "unterminated heredoc 'B'"),
    ("FROM a\nRUN --mnt=type=cache true\n", 2, "unknown flag: mnt"),
    ("FROM a\nRUN --network true\n", 2, "missing a value on flag: network"),
    ("FROM a\nRUN --network=a --network=b true\n", 2, "duplicate flag specified: network"),
    ("FROM a\nCOPY --link=maybe a b\n", 2, "expecting boolean value for flag link"),
    ("FROM a\nCOPY --link= a b\n", 2, "missing a value on flag: link"),
    ("FROM a\nCOPY --from a b\n", 2, "missing a value on flag: from"),
    ("FROM a\nADD --from=x a b\n", 2, "unknown flag: from"),
    ("FROM a\nADD --parents a b\n", 2, "unknown flag: parents"),
    ("FROM --plaform=x a\n", 1, "unknown flag: plaform"),
    ("FROM a\nENV --x=1 a=b\n", 2, "unknown flag: x"),
    ("FROM a\nCMD --help\n", 2, "unknown flag: help"),
    ("FROM a\nCOPY onlyone\n", 2, "COPY requires at least two arguments"),
    ('FROM a\nCOPY ["one"]\n', 2, "COPY requires at least two arguments"),
    ("FROM a\nADD x\n", 2, "ADD requires at least two arguments"),
    ("FROM a\nCOPY a <<EOF\nx\nEOF\n", 2, "cannot accept a heredoc as a destination"),
    ("FROM a\nENV\n", 2, "ENV requires at least one argument"),
    ("FROM a\nENV novalue\n", 2, "ENV must have two arguments"),
    ("FROM a\nENV a=1 b\n", 2, 'can\'t find = in "b"'),
    ("FROM a\nENV =x\n", 2, "ENV names can not be blank"),
    ("FROM a\nLABEL\n", 2, "LABEL requires at least one argument"),
    ("FROM a\nLABEL k\n", 2, "LABEL must have two arguments"),
    ("FROM a\nARG\n", 2, "ARG requires at least one argument"),
    ("FROM a\nARG =1\n", 2, "ARG names can not be blank"),
    ("FROM a\nEXPOSE\n", 2, "EXPOSE requires at least one argument"),
    ("FROM a\nVOLUME\n", 2, "VOLUME requires at least one argument"),
    ('FROM a\nVOLUME ["/a", " "]\n', 2, "VOLUME specified can not be an empty string"),
    ("FROM a\nWORKDIR\n", 2, "WORKDIR requires exactly one argument"),
    ("FROM a\nUSER\n", 2, "USER requires exactly one argument"),
    ("FROM a\nSTOPSIGNAL\n", 2, "STOPSIGNAL requires exactly one argument"),
    ("FROM a\nMAINTAINER\n", 2, "MAINTAINER requires exactly one argument"),
    ("FROM a\nSHELL /bin/sh -c\n", 2, "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nSHELL []\n", 2, "SHELL requires at least one argument"),
    ('FROM a\nRUN ["a", 1]\n', 2, "arrays must be comprised of strings only"),
    ('FROM a\nCMD ["a", null]\n', 2, "arrays must be comprised of strings only"),
    ("FROM a\nHEALTHCHECK\n", 2, "HEALTHCHECK requires at least one argument"),
    ("FROM a\nHEALTHCHECK NONE x\n", 2, "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK CMD\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK CMD []\n", 2, "Missing command after HEALTHCHECK CMD"),
    ("FROM a\nHEALTHCHECK RUN x\n", 2, 'Unknown type "RUN" in HEALTHCHECK (try CMD)'),
    ("FROM a\nHEALTHCHECK --interval=10 CMD x\n", 2, "missing unit"),
    ("FROM a\nHEALTHCHECK --interval=5x CMD x\n", 2, "unknown unit"),
    ("FROM a\nHEALTHCHECK --timeout=1ns CMD x\n", 2, 'Interval "timeout" cannot be less than 1ms'),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", 2, "--retries cannot be negative (-1)"),
    ("FROM a\nHEALTHCHECK --retries=x CMD x\n", 2, "invalid syntax"),
    ("FROM a\nHEALTHCHECK --tries=1 CMD x\n", 2, "unknown flag: tries"),
    ("FROM a\nONBUILD\n", 2, "ONBUILD requires at least one argument"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", 2, "Chaining ONBUILD"),
    ("FROM a\nONBUILD FROM b\n", 2, "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD MAINTAINER b\n", 2, "MAINTAINER isn't allowed as an ONBUILD trigger"),
    ("FROM a\nONBUILD BOGUS b\n", 2, "unknown instruction: BOGUS"),
    ("# escape=x\nFROM a\n", 1, "invalid escape token 'x'"),
    ("# escape=\\\n# escape=`\nFROM a\n", 2, "only one escape parser directive"),
    ("# syntax=a\n# SYNTAX=b\nFROM a\n", 2, "only one syntax parser directive"),
    ("FROM a\nRUN echo \\\n  a \\\n  b\nBAD x\n", 5, "unknown instruction: BAD"),
    ("FROM a\nRUN <<EOF\nx\nEOF\nBAD\n", 5, "unknown instruction: BAD"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), ERRORS)
def test_parse_error(text: str, line: int, fragment: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text, filename="df/Dockerfile.test")
    error = info.value
    assert fragment in error.problem
    assert error.line == line
    assert error.file == "df/Dockerfile.test"
    assert str(error).startswith(f"df/Dockerfile.test:{line}: ")


def test_unknown_instruction_suggests_the_closest_keyword() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\nCOPPY a b\n")
    assert info.value.hint == "did you mean COPY?"


def test_unknown_flag_suggests_the_closest_flag() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM a\nCOPY --chmown=1 a b\n")
    assert "did you mean chown?" in info.value.problem
