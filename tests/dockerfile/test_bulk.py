"""Instructions made by ``bulk.maker`` are whole, ordinary frozen slotted dataclasses.

The makers store each field through its slot without the class's ``__init__``; a maker that
skipped a field would leave an instruction missing it (reading it raises AttributeError), and
the shared empty flags must not be changeable. Every keyword, with and without flags, is
checked here.
"""

from __future__ import annotations

import dataclasses

import pytest

from kiln.dockerfile import FromInstruction, Instruction, RunInstruction, parse
from kiln.dockerfile.bulk import EMPTY_FLAGS, maker

EVERY_KEYWORD = """\
ARG G=1
FROM --platform=linux/amd64 busybox AS base
ARG A B=2
ENV K=v L="w x"
ENV legacy value
LABEL a=b
EXPOSE 80/tcp 443
VOLUME ["/v"]
VOLUME /w
WORKDIR /src
USER 1:2
STOPSIGNAL SIGTERM
MAINTAINER someone
HEALTHCHECK --interval=5s --retries=3 CMD true
HEALTHCHECK NONE
SHELL ["/bin/sh", "-c"]
RUN --network=default echo hi
RUN ["echo", "exec"]
RUN <<EOF
echo heredoc
EOF
CMD echo cmd
CMD ["cmd"]
ENTRYPOINT ["ep"]
ENTRYPOINT ep
ONBUILD RUN echo later
COPY --from=base --chown=1:2 --chmod=644 --link --parents --exclude=*.tmp a b /dst/
COPY <<EOF /inline
text
EOF
ADD --checksum=sha256:00 --keep-git-dir --unpack=false --chown=1 --link http://x/y /z
ADD a /b
FROM base
"""


def _all_instructions() -> list[Instruction]:
    parsed = parse(EVERY_KEYWORD)
    out: list[Instruction] = list(parsed.meta_args)
    for stage in parsed.stages:
        out.append(stage.from_)
        out.extend(stage.instructions)
    return out


def test_every_keyword_is_in_the_corpus() -> None:
    from kiln.dockerfile.convert import KEYWORDS

    assert {i.keyword for i in _all_instructions()} == KEYWORDS


@pytest.mark.parametrize("instruction", _all_instructions(), ids=lambda i: f"{i.line}-{i.keyword}")
def test_a_parsed_instruction_holds_exactly_its_fields(instruction: Instruction) -> None:
    names = [f.name for f in dataclasses.fields(instruction)]
    assert not hasattr(instruction, "__dict__")
    rebuilt = type(instruction)(**{name: getattr(instruction, name) for name in names})
    assert rebuilt == instruction
    assert repr(rebuilt) == repr(instruction)
    with pytest.raises(dataclasses.FrozenInstanceError):
        instruction.line = 0  # type: ignore[misc]


def test_instructions_without_flags_share_one_unchangeable_mapping() -> None:
    flagged = parse("FROM a\nCOPY --link b c\n").stages[0].instructions[0]
    plain = parse("FROM a\nRUN b\n").stages[0].instructions[0]
    assert plain.flags is EMPTY_FLAGS and plain.flags == {} and repr(plain.flags) == "{}"
    assert flagged.flags == {"link": "true"} and type(flagged.flags) is dict
    with pytest.raises(TypeError):
        plain.flags["x"] = "y"
    with pytest.raises(TypeError):
        plain.flags.update(x="y")
    assert EMPTY_FLAGS == {}


def test_a_maker_applies_defaults_and_computed_fields() -> None:
    make = maker(FromInstruction, "text", keyword='"FROM"', original="text", source="text")
    made = make("FROM a", line=1, end_line=1, flags={}, raw_flags=(), image="a")
    expected = FromInstruction(
        keyword="FROM", line=1, end_line=1, original="FROM a", source="FROM a", image="a"
    )
    assert made == expected and made.name is None and made.platform is None
    assert type(made) is FromInstruction  # not the mutable twin it was filled as
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.image = "b"  # type: ignore[misc]


def test_a_maker_refuses_a_missing_or_unknown_field() -> None:
    make = maker(RunInstruction)
    with pytest.raises(TypeError):
        make(keyword="RUN", line=1)
    with pytest.raises(TypeError):
        make(keyword="RUN", bogus=1)
