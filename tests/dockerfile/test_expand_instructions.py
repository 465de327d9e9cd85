"""Which words each instruction expands (``Instruction.expand``), and which it keeps as written.

Docker (BuildKit) expands the words the builder itself uses (paths, names, ports, the user...)
and leaves alone the text a shell in the image will read (RUN, CMD, ENTRYPOINT, HEALTHCHECK),
SHELL, MAINTAINER, ONBUILD triggers (expanded when they fire), COPY/ADD ``--chmod`` and ADD
``--checksum``. Each row: a line, then the fields of the expanded instruction.
"""

from __future__ import annotations

from typing import Any

import pytest

from kiln.dockerfile import Expander, ExpansionError, Heredoc, Instruction, parse

ENV = {"A": "a", "P": "8080 9090", "U": "1000", "Q": '"q"', "E": ""}

ROWS: list[tuple[str, dict[str, Any]]] = [
    ("FROM $A:1 AS base", {"image": "a:1", "name": "base"}),
    ("FROM --platform=$A x", {"platform": "a", "image": "x"}),
    ("ENV $A=$A k='$A' m=\"$A\"", {"pairs": (("$A", "a"), ("k", "$A"), ("m", "a"))}),
    ("LABEL $A=$A", {"pairs": (("a", "a"),)}),
    ("EXPOSE $P 1/udp", {"ports": ("8080", "9090", "1/udp")}),
    ('EXPOSE "$P"', {"ports": ("8080 9090",)}),
    ("VOLUME /v/$A ${E:-/d}", {"paths": ("/v/a", "/d")}),
    ('VOLUME ["/j/$A"]', {"paths": ("/j/a",)}),
    ("WORKDIR /w/$A", {"path": "/w/a"}),
    ("USER $U:$A", {"user": "1000:a"}),
    ("STOPSIGNAL SIG$A", {"signal": "SIGa"}),
    ("RUN echo $A", {"command": "echo $A"}),
    ('RUN ["echo", "$A"]', {"command": ["echo", "$A"]}),
    ("CMD echo $A", {"command": "echo $A"}),
    ('ENTRYPOINT ["$A"]', {"command": ["$A"]}),
    ('SHELL ["/bin/$A", "-c"]', {"shell": ["/bin/$A", "-c"]}),
    ("HEALTHCHECK CMD test $A", {"test": ["CMD-SHELL", "test $A"]}),
    ("MAINTAINER $A", {"name": "$A"}),
    ("ONBUILD RUN echo $A", {"trigger": "RUN echo $A"}),
    ("ARG $A=$A", {"args": (("$A", "$A"),)}),
    (
        "COPY --from=$A --chown=$U:$A --chmod=$U --exclude=*.$A s/$A /d/$A/",
        {
            "from_": "a",
            "chown": "1000:a",
            "chmod": "$U",
            "exclude": ("*.a",),
            "sources": ("s/a",),
            "dest": "/d/a/",
        },
    ),
    (
        "ADD --checksum=sha256:$A --chown=$U http://h/$A /d",
        {"checksum": "sha256:$A", "chown": "1000", "sources": ("http://h/a",), "dest": "/d"},
    ),
]


def _instruction(line: str) -> Instruction:
    parsed = parse(line if line.startswith("FROM") else f"FROM scratch\n{line}\n")
    stage = parsed.stages[-1]
    return stage.from_ if line.startswith("FROM") else stage.instructions[0]


@pytest.mark.parametrize(("line", "expected"), ROWS, ids=[r[0] for r in ROWS])
def test_expanded_fields(line: str, expected: dict[str, Any]) -> None:
    original = _instruction(line)
    expanded = original.expand(Expander(ENV))
    assert type(expanded) is type(original)
    for name, value in expected.items():
        assert getattr(expanded, name) == value, name
    # Where it came from is unchanged.
    assert (expanded.line, expanded.original, expanded.source) == (
        original.line,
        original.original,
        original.source,
    )


def test_heredoc_bodies_expand_unless_the_delimiter_is_quoted() -> None:
    copy = _instruction('COPY <<EOF <<"RAW" /d/\n$A "$A"\nEOF\n$A\nRAW')
    expanded = copy.expand(Expander(ENV))
    assert expanded.heredocs == (  # type: ignore[attr-defined]
        Heredoc("EOF", 'a "a"\n', expand=True),
        Heredoc("RAW", "$A\n", expand=False),
    )


def test_run_heredocs_stay_for_the_shell() -> None:
    run = _instruction("RUN <<EOF\necho $A\nEOF")
    assert run.expand(Expander(ENV)) == run


def test_the_escape_directive_is_used() -> None:
    assert _instruction("WORKDIR /a`$A").expand(Expander(ENV, "`")).path == "/a$A"  # type: ignore[attr-defined]


def test_a_bad_word_is_an_expansion_error() -> None:
    with pytest.raises(ExpansionError, match="must be set"):
        _instruction("USER ${NOPE:?must be set}").expand(Expander(ENV))
