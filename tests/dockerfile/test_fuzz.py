"""Fuzz target: the Dockerfile parser and expander never fail with anything but DockerfileError.

Property, for every input: ``parse`` either returns or raises ``DockerfileError`` with a line;
then every word the build would expand (global ARGs, every FROM, every instruction dispatched
in every stage, ONBUILD triggers parsed again) either expands or raises ``DockerfileError``
with a line. Never another exception, never more than ``HANG_SECONDS`` on one input.

Inputs come from four strategies: raw bytes and raw text (random); a seed corpus of real
Dockerfiles (this repository's equivalence cases and examples) with bytes inserted, deleted,
replaced and lines spliced (mutated); and Dockerfile-like texts assembled from instruction
keywords, every flag the parser knows, heredocs, continuations, comments, directives, quotes,
``${}`` with every modifier, escapes, JSON arrays, CRLF, BOM and invalid UTF-8 (structure-aware).
A few generated inputs also go through the real ``kiln parse`` command.

Bounded for CI: ``KILN_FUZZ_EXAMPLES`` examples per strategy (default 150; the whole file then
runs in well under 60 s on the 2-core CI machine). A long campaign:

    KILN_FUZZ_EXAMPLES=10000 PYTHONPATH=src python3 -m pytest -q -p no:cacheprovider \\
        tests/dockerfile/test_fuzz.py

Each run draws new random inputs; a failure prints the shrunk input, which then belongs in
``test_robustness.py`` as a regression case.
"""

from __future__ import annotations

import os
import re
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.builder.dispatch import DispatchContext, dispatch
from kiln.builder.onbuild import trigger_instructions
from kiln.builder.state import StageState
from kiln.dockerfile import check_from_lines, global_args, parse
from kiln.dockerfile.convert import KEYWORDS, RUN_FLAGS
from kiln.dockerfile.convert_files import ADD_FLAGS, COPY_FLAGS
from kiln.dockerfile.convert_health import HEALTHCHECK_FLAGS
from kiln.dockerfile.flags import FlagKind
from kiln.errors import DockerfileError
from kiln.image import ImageConfig
from tests.support.tools import run_kiln

EXAMPLES = int(os.environ.get("KILN_FUZZ_EXAMPLES", "150"))
HANG_SECONDS = 5.0
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a hang is caught by the alarm below, which also interrupts it
    database=None,  # every run attacks afresh; failures are kept as regression tests
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REPO = Path(__file__).resolve().parents[2]
SEEDS = sorted(
    p.read_bytes()
    for p in [
        *REPO.glob("tests/equivalence/cases/*/Dockerfile"),
        *REPO.glob("examples/*/Dockerfile"),
    ]
)


class Hang(Exception):
    """One input took longer than HANG_SECONDS."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def assert_located(error: DockerfileError) -> None:
    assert error.line >= 1, error
    assert str(error).startswith(f"{error.file}:{error.line}: "), error


def expand_everything(data: bytes | str) -> None:
    """Parse, then expand every word a build of every stage would expand."""
    try:
        dockerfile = parse(data)
    except DockerfileError as exc:
        assert_located(exc)
        return
    used: set[str] = set()
    try:
        meta = global_args(dockerfile, {"TARGETARCH": "amd64"}, {"A": "given", "B": None}, used)
        check_from_lines(dockerfile, meta)
    except DockerfileError as exc:
        assert_located(exc)
    ctx = DispatchContext(
        build_args={"A": "given", "HTTP_PROXY": "http://p"},
        filename=dockerfile.filename,
        created="2024-01-01T00:00:00Z",
        used_build_args=used,
        meta_args={"A": "meta"},
        escape=dockerfile.escape,
    )
    for stage in dockerfile.stages:
        state = StageState(config=ImageConfig.empty().with_env(["PATH=/bin", "E=e v"]))
        for instruction in stage.instructions:
            try:
                state = dispatch(state, instruction, ctx).state
            except DockerfileError as exc:
                assert_located(exc)
        try:
            trigger_instructions(state.config.onbuild, "base", dockerfile.filename, stage.from_)
        except DockerfileError as exc:
            assert_located(exc)


def check(data: bytes | str) -> None:
    with time_limit(HANG_SECONDS):
        expand_everything(data)


# ---------------------------------------------------------------- structure-aware generation

NAMES = st.sampled_from(["A", "B", "a", "E", "PATH", "HTTP_PROXY", "_x1", "unset", "1", "@"])
MODIFIERS = st.sampled_from([":-", "-", ":+", "+", ":?", "?", "#", "##", "%", "%%", "/", "//"])
PLAIN = st.text(alphabet="abcxyz/._-*?[]0123456789=:,", min_size=0, max_size=8)
SPECIALS = st.sampled_from(
    ["\\", "`", "'", '"', "$", "{", "}", "<<", " ", "\t", "\\\n", "`\n", "#", "=", "[", "]"]
)


@st.composite
def words(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 9 if depth < 4 else 5))
    if kind <= 2:
        return draw(PLAIN)
    if kind == 3:
        if draw(st.integers(0, 9)) == 0:  # nested far past MAX_NESTING, maybe unbalanced
            opened, closed = draw(st.integers(1, 600)), draw(st.integers(0, 600))
            return "${a:-" * opened + draw(PLAIN) + "}" * closed
        return draw(SPECIALS)
    if kind == 4:
        return "$" + draw(NAMES)
    if kind == 5:
        return "${" + draw(NAMES) + "}"
    if kind == 6:
        inner = draw(words(depth + 1))
        return "${" + draw(NAMES) + draw(MODIFIERS) + inner + draw(st.sampled_from(["}", ""]))
    if kind == 7:
        return '"' + draw(words(depth + 1)) + draw(st.sampled_from(['"', ""]))
    if kind == 8:
        return "'" + draw(words(depth + 1)) + draw(st.sampled_from(["'", ""]))
    return draw(words(depth + 1)) + draw(words(depth + 1))


FLAG_SPECS = {
    "RUN": RUN_FLAGS,
    "COPY": COPY_FLAGS,
    "ADD": ADD_FLAGS,
    "HEALTHCHECK": HEALTHCHECK_FLAGS,
    "FROM": {"platform": FlagKind.STRING},
}
ALL_FLAGS = sorted({name for spec in FLAG_SPECS.values() for name in spec} | {"bogus", ""})


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in ``n`` draws (hypothesis's own integers favour the boundaries)."""
    return draw(st.randoms(use_true_random=True)).random() < 1 / n


@st.composite
def flags(draw: st.DrawFn, keyword: str = "") -> str:
    spec = FLAG_SPECS.get(keyword.split()[-1].upper() if keyword else "", {})
    out = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        if spec and not one_in(draw, 8):
            name = draw(st.sampled_from(sorted(spec)))
        else:
            name = draw(st.sampled_from(ALL_FLAGS))
        if spec.get(name) is FlagKind.BOOL and not one_in(draw, 4):
            value = draw(st.sampled_from([None, "true", "false"]))
        else:
            value = draw(
                st.one_of(
                    st.sampled_from(["true", "default", "none", "type=cache,target=/c"]),
                    st.sampled_from(["5s", "1m30s", "3", "-1", "1:2", "0755", "u=rwX", "sha256:0"]),
                    st.none(),
                    words(),
                )
            )
        out.append(f"--{name}" if value is None else f"--{name}={value}")
    return " ".join(out)


@st.composite
def arguments(draw: st.DrawFn) -> str:
    if one_in(draw, 6):  # exec form, valid or not
        items = draw(st.lists(words(), max_size=3))
        return "[" + ", ".join(f'"{i}"' for i in items) + draw(st.sampled_from(["]", "", ", 1]"]))
    return " ".join(draw(st.lists(words(), min_size=1 if not one_in(draw, 10) else 0, max_size=5)))


KEYWORD_CHOICES = [*sorted(KEYWORDS), "from", "Run", "ONBUILD RUN", "ONBUILD ONBUILD", "FROB"]


@st.composite
def instruction(draw: st.DrawFn) -> str:
    keyword = draw(st.sampled_from(KEYWORD_CHOICES))
    if keyword.upper() == "FROM":
        return draw(from_line())
    line = f"{keyword} {draw(flags(keyword))} {draw(arguments())}"
    if keyword.endswith(("RUN", "COPY", "ADD")) and draw(st.booleans()):
        name = draw(st.sampled_from(["EOF", "E", "'EOF'", '"E"', "END"]))
        marker = draw(st.sampled_from(["<<", "<<-", "3<<"])) + name
        body = "\n".join(draw(st.lists(words(), max_size=3)))
        end = name.strip("'\"") if draw(st.integers(0, 5)) else "NOPE"
        line = f"{line} {marker}\n{body}\n{end}"
    if one_in(draw, 5):  # continue the line, maybe over comments and blanks
        pieces = draw(st.lists(st.sampled_from(["# c", "", "  more", "x \\"]), max_size=3))
        line = line + " \\\n" + "\n".join(pieces)
    return line


@st.composite
def from_line(draw: st.DrawFn) -> str:
    images = ["scratch", "busybox", "$IMG", "${IMG:-alpine}", "img:${V}", "0", "s1"]
    image = draw(words()) if one_in(draw, 6) else draw(st.sampled_from(images))
    name = draw(st.sampled_from(["", "", "AS s1", "as S", "AS s2"]))
    if one_in(draw, 10):
        name = draw(st.sampled_from(["AS", "AS s1 x", "AS 1x"]))
    platform = "" if not one_in(draw, 4) else "--platform=" + draw(words())
    return f"FROM {platform} {image} {name}"


@st.composite
def dockerfiles(draw: st.DrawFn) -> bytes:
    directives = ["# escape=`", "# syntax=x", "# check=skip=all", "# escape=\\"]
    head = [d for d in directives[: draw(st.sampled_from([0, 0, 1, 2, 3]))] if not one_in(draw, 2)]
    if one_in(draw, 20):
        head.append(draw(st.sampled_from(["# escape=?", "# escape=`", "# syntax=y"])))
    body = []
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        name = draw(words()) if one_in(draw, 6) else draw(st.sampled_from(["A", "IMG", "V"]))
        body.append(f"ARG {name}={draw(words())}")
    body.append(draw(from_line()))
    body += draw(st.lists(instruction(), max_size=8))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join([*head, *body]) + draw(st.sampled_from(["", "\n", "\\", "`"]))
    if draw(st.booleans()):
        text = "\ufeff" + text
    data = text.encode("utf-8", "surrogatepass")
    if one_in(draw, 10):  # an invalid byte somewhere
        at = draw(st.integers(0, len(data)))
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80", b"\xf4\x90"]))
        data = data[:at] + bad + data[at:]
    return data


# -------------------------------------------------------------------------------- mutation


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 4))
        at = draw(st.integers(0, len(data)))
        if op == 0:
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == 1:
            data[at:at] = draw(
                st.sampled_from(
                    [b"\\\n", b"${", b"}", b'"', b"'", b"<<EOF\n", b"\n#", b"--mount=type=cache "]
                )
            )
        elif op == 2 and data:
            del data[at : at + draw(st.integers(1, 8))]
        elif op == 3 and data:
            data[at : at + 1] = draw(st.binary(min_size=1, max_size=1))
        else:  # splice a line of another seed
            other = draw(st.sampled_from(SEEDS)).splitlines(keepends=True)
            if other:
                data[at:at] = draw(st.sampled_from(other))
    return bytes(data)


# ----------------------------------------------------------------------------------- tests


def test_the_seed_corpus_is_there() -> None:
    assert len(SEEDS) >= 20


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(st.text(max_size=400))
def test_random_text(text: str) -> None:
    check(text)


@FUZZ
@given(mutated())
def test_mutated_real_dockerfiles(data: bytes) -> None:
    check(data)


@FUZZ
@given(dockerfiles())
def test_structure_aware_dockerfiles(data: bytes) -> None:
    check(data)


@settings(FUZZ, max_examples=max(3, EXAMPLES // 30))
@given(st.one_of(dockerfiles(), mutated()))
def test_kiln_parse_command(data: bytes) -> None:
    """The real CLI: exit 0 with JSON, or exit 1 with `FILE:LINE: ...` and no traceback."""
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "Dockerfile"
        path.write_bytes(data)
        result = run_kiln("parse", "--compact", str(path), timeout=30)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode in (0, 1), result.stderr
    if result.returncode == 0:
        assert result.stdout.startswith("{")
    else:
        assert re.search(rf"{re.escape(str(path))}:[1-9][0-9]*: ", result.stderr), result.stderr
