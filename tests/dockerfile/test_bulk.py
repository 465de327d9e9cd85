"""Instructions made by ``bulk.frozen_instance`` are whole, ordinary frozen dataclasses.

The converters hand ``frozen_instance`` a dict of fields that becomes the instance's
``__dict__`` as it is; a converter that misspelled a field name would make an instruction
missing that field. Every keyword, with and without flags, is checked here.
"""

from __future__ import annotations

import dataclasses

import pytest

from kiln.dockerfile import FromInstruction, Instruction, RunInstruction, parse
from kiln.dockerfile.bulk import frozen_instance

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
    assert sorted(vars(instruction)) == sorted(names)
    rebuilt = type(instruction)(**{name: getattr(instruction, name) for name in names})
    assert rebuilt == instruction
    assert repr(rebuilt) == repr(instruction)
    with pytest.raises(dataclasses.FrozenInstanceError):
        instruction.line = 0  # type: ignore[misc]


def test_missing_fields_fall_back_to_the_dataclass_init() -> None:
    made = frozen_instance(
        FromInstruction,
        {"keyword": "FROM", "line": 1, "end_line": 1, "original": "FROM a", "image": "a"},
    )
    assert made == FromInstruction(keyword="FROM", line=1, end_line=1, original="FROM a", image="a")


def test_an_unknown_field_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        frozen_instance(RunInstruction, {"keyword": "RUN", "bogus": 1})
