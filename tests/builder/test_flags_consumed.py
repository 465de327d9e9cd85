"""Every instruction flag the parser accepts is honoured or refused: none is parsed and ignored.

The accepted flags are not listed by hand: parsing one sample line per keyword records the
flag spec each converter really checks against, so a flag added to a spec without handling
makes ``test_every_accepted_flag_is_classified`` fail until it gets a row below. Each row then
proves its verdict: an honoured flag changes what dispatch produces (or is exercised by a named
equivalence case against buildah, for flags only the builder reads), a flag whose given value
is what kiln does anyway dispatches exactly as without it, and a refused flag is a
``Dockerfile:LINE`` error before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiln.builder.dispatch import DispatchContext, Dispatched, dispatch, refuse_unsupported
from kiln.builder.state import StageState
from kiln.dockerfile import parse
from kiln.dockerfile.convert import KEYWORDS
from kiln.dockerfile.convert_context import ConvertContext
from kiln.dockerfile.flags import FlagSpec, ParsedFlags
from kiln.errors import DockerfileError
from kiln.image import ImageConfig

EQUIVALENCE_CASES = Path(__file__).resolve().parents[1] / "equivalence" / "cases"

# One valid line per keyword, each written to reach its converter's flag check (RUN and FROM
# check only lines that have flags: one per line of a large file, so theirs carry one).
SAMPLES = {
    "ADD": "ADD a /b",
    "ARG": "ARG a=1",
    "CMD": "CMD true",
    "COPY": "COPY a /b",
    "ENTRYPOINT": "ENTRYPOINT true",
    "ENV": "ENV a=1",
    "EXPOSE": "EXPOSE 80",
    "FROM": "FROM --platform=linux/amd64 scratch",
    "HEALTHCHECK": "HEALTHCHECK CMD true",
    "LABEL": "LABEL a=1",
    "MAINTAINER": "MAINTAINER me",
    "ONBUILD": "ONBUILD RUN true",
    "RUN": "RUN --network=default true",
    "SHELL": 'SHELL ["/bin/sh", "-c"]',
    "STOPSIGNAL": "STOPSIGNAL SIGTERM",
    "USER": "USER 1",
    "VOLUME": "VOLUME /v",
    "WORKDIR": "WORKDIR /w",
}


def accepted_flags(monkeypatch: pytest.MonkeyPatch) -> set[tuple[str, str]]:
    """(keyword, flag) for every flag some converter accepts, recorded from real parses."""
    seen: set[tuple[str, str]] = set()
    real = ConvertContext.flags

    def recording(self: ConvertContext, spec: FlagSpec) -> ParsedFlags:
        seen.update((self.keyword, name) for name in spec)
        return real(self, spec)

    monkeypatch.setattr(ConvertContext, "flags", recording)
    for keyword, line in SAMPLES.items():
        parse(line + "\n" if keyword == "FROM" else f"FROM scratch\n{line}\n")
    return seen


@dataclass(frozen=True)
class Honoured:
    """Dispatching ``with_`` gives a different result from ``without`` (the flag is used)."""

    with_: str
    without: str


@dataclass(frozen=True)
class SameAsDefault:
    """The given value is what kiln always does: dispatch is identical; ``case`` (an
    equivalence case, compared with buildah) shows the built image agrees, when given."""

    with_: str
    without: str
    case: str = ""


@dataclass(frozen=True)
class ReadByBuilder:
    """Read outside dispatch (by the builder); ``case`` is the equivalence case that uses it."""

    case: str


@dataclass(frozen=True)
class Refused:
    """Refused with ``Dockerfile:LINE`` and ``message``."""

    line: str
    message: str


Verdict = Honoured | SameAsDefault | ReadByBuilder | Refused

VERDICTS: dict[tuple[str, str], list[Verdict]] = {
    ("FROM", "platform"): [ReadByBuilder("from-platform")],
    ("RUN", "mount"): [
        Refused("RUN --mount=type=cache,target=/c true", "RUN --mount=type=cache,target=/c"),
        Refused("RUN --mount=type=tmpfs,target=/t true", "RUN --mount=type=tmpfs,target=/t"),
        Refused("RUN --mount=type=bogus true", "RUN --mount=type=bogus is not supported"),
    ],
    ("RUN", "network"): [
        SameAsDefault("RUN --network=default true", "RUN true"),
        Refused("RUN --network=none true", "RUN --network=none is not supported"),
        Refused("RUN --network=host true", "RUN --network=host is not supported"),
    ],
    ("RUN", "security"): [
        Refused("RUN --security=insecure true", "RUN --security=insecure is not supported"),
        Refused("RUN --security=sandbox true", "RUN --security=sandbox is not supported"),
    ],
    ("COPY", "from"): [Honoured("COPY --from=img a /b", "COPY a /b")],
    ("COPY", "chown"): [Honoured("COPY --chown=1:2 a /b", "COPY a /b")],
    ("COPY", "chmod"): [Honoured("COPY --chmod=600 a /b", "COPY a /b")],
    ("COPY", "link"): [SameAsDefault("COPY --link a /b", "COPY a /b", "copy-link")],
    ("COPY", "parents"): [Honoured("COPY --parents a/b /c/", "COPY a/b /c/")],
    ("COPY", "exclude"): [Honoured("COPY --exclude=*.md a /b", "COPY a /b")],
    ("ADD", "chown"): [Honoured("ADD --chown=1:2 a /b", "ADD a /b")],
    ("ADD", "chmod"): [Honoured("ADD --chmod=600 a /b", "ADD a /b")],
    ("ADD", "link"): [SameAsDefault("ADD --link a /b", "ADD a /b")],
    ("ADD", "keep-git-dir"): [
        Refused("ADD --keep-git-dir https://h/r.git /d", "ADD --keep-git-dir is not supported"),
        SameAsDefault("ADD --keep-git-dir=false a /b", "ADD a /b"),
    ],
    ("ADD", "checksum"): [
        Honoured("ADD --checksum=sha256:" + "0" * 64 + " https://h/f /d", "ADD https://h/f /d")
    ],
    ("ADD", "exclude"): [Honoured("ADD --exclude=*.md a /b", "ADD a /b")],
    ("ADD", "unpack"): [Honoured("ADD --unpack=false a.tar /b", "ADD a.tar /b")],
    ("HEALTHCHECK", "interval"): [Honoured("HEALTHCHECK --interval=5s CMD x", "HEALTHCHECK CMD x")],
    ("HEALTHCHECK", "timeout"): [Honoured("HEALTHCHECK --timeout=5s CMD x", "HEALTHCHECK CMD x")],
    ("HEALTHCHECK", "start-period"): [
        Honoured("HEALTHCHECK --start-period=5s CMD x", "HEALTHCHECK CMD x")
    ],
    ("HEALTHCHECK", "start-interval"): [
        Honoured("HEALTHCHECK --start-interval=5s CMD x", "HEALTHCHECK CMD x")
    ],
    ("HEALTHCHECK", "retries"): [Honoured("HEALTHCHECK --retries=3 CMD x", "HEALTHCHECK CMD x")],
}


def test_every_keyword_has_a_sample() -> None:
    assert set(SAMPLES) == set(KEYWORDS)


def test_every_accepted_flag_is_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    accepted = accepted_flags(monkeypatch)
    assert accepted, "the recording found no flags: the parser's flag check moved"
    unclassified = accepted - set(VERDICTS)
    assert not unclassified, f"flags parsed but neither honoured nor refused: {unclassified}"
    stale = set(VERDICTS) - accepted
    assert not stale, f"verdicts for flags the parser no longer accepts: {stale}"


def _dispatch(line: str) -> list[Dispatched]:
    dockerfile = parse(f"FROM scratch\n{line}\n")
    ctx = DispatchContext(
        build_args={},
        filename="Dockerfile",
        created="2024-01-01T00:00:00Z",
        used_build_args=set(),
        meta_args={},
    )
    state = StageState(config=ImageConfig.empty())
    out = []
    for instruction in dockerfile.stages[0].instructions:
        result = dispatch(state, instruction, ctx)
        state = result.state
        out.append(result)
    return out


def _outcome(results: list[Dispatched]) -> list[Any]:
    return [(r.state, r.effect, r.history.created_by if r.history else None) for r in results]


CASES = [
    pytest.param(flag, verdict, id=f"{keyword}--{flag}-{i}")
    for (keyword, flag), verdicts in VERDICTS.items()
    for i, verdict in enumerate(verdicts)
]


@pytest.mark.parametrize(("flag", "verdict"), CASES)
def test_verdict_holds(flag: str, verdict: Verdict) -> None:
    if isinstance(verdict, Honoured):
        assert _outcome(_dispatch(verdict.with_)) != _outcome(_dispatch(verdict.without))
    elif isinstance(verdict, SameAsDefault):
        with_, without = _dispatch(verdict.with_), _dispatch(verdict.without)
        # Only the recorded flags differ; what dispatch hands the executor is the same.
        assert [r.effect for r in with_] == [r.effect for r in without]
        assert [r.state for r in with_] == [r.state for r in without]
        if verdict.case:
            assert f"--{flag}" in (EQUIVALENCE_CASES / verdict.case / "Dockerfile").read_text()
    elif isinstance(verdict, ReadByBuilder):
        assert f"--{flag}" in (EQUIVALENCE_CASES / verdict.case / "Dockerfile").read_text()
    else:
        with pytest.raises(DockerfileError, match=f"^Dockerfile:2: {_escaped(verdict.message)}"):
            _dispatch(verdict.line)
        instruction = parse(f"FROM scratch\n{verdict.line}\n").stages[0].instructions[0]
        with pytest.raises(DockerfileError, match=r"^Dockerfile:2: "):
            refuse_unsupported(instruction, "Dockerfile")


def _escaped(text: str) -> str:
    return re.escape(text)


def test_flags_on_healthcheck_none_are_refused_not_ignored() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: HEALTHCHECK NONE takes no flags"):
        parse("FROM scratch\nHEALTHCHECK --interval=5s NONE\n")
