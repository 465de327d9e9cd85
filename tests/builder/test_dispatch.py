"""Pure dispatch, as data tables: Dockerfile lines in, image config / effects / history out.

No containers and no files: instructions are parsed from text and dispatched one after another
(the recording-executor style); each row states what Docker (BuildKit) produces for it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from kiln.builder.dispatch import DispatchContext, Dispatched, dispatch
from kiln.builder.effects import CopyEffect, RunEffect, WorkdirEffect
from kiln.builder.onbuild import trigger_instructions
from kiln.builder.platform_args import platform_args, resolve_build_args
from kiln.builder.state import StageState
from kiln.dockerfile import FromInstruction, parse
from kiln.errors import DockerfileError
from kiln.image import ImageConfig, Platform


def run_lines(
    body: str,
    build_args: dict[str, str | None] | None = None,
    meta_args: dict[str, str] | None = None,
) -> tuple[StageState, list[Dispatched], set[str]]:
    """Dispatch every instruction of `FROM scratch\\n<body>`; return the state and results."""
    dockerfile = parse("FROM scratch\n" + body)
    used: set[str] = set()
    ctx = DispatchContext(
        build_args=build_args or {},
        filename="Dockerfile",
        created="2024-01-01T00:00:00Z",
        used_build_args=used,
        meta_args=meta_args or {},
        escape=dockerfile.escape,
    )
    state = StageState(config=ImageConfig.empty().with_env(["PATH=/bin"]))
    results = []
    for instruction in dockerfile.stages[0].instructions:
        result = dispatch(state, instruction, ctx)
        state = result.state
        results.append(result)
    return state, results, used


CONFIG_CASES: list[tuple[str, str, Any]] = [
    # (Dockerfile body, config accessor, expected value)
    ("ENV a=1\nENV a=2 b=$a", "env", ("PATH=/bin", "a=2", "b=1")),
    ("ENV PATH=/x:$PATH", "env", ("PATH=/x:/bin",)),
    ("ENV k v w", "env", ("PATH=/bin", "k=v w")),
    ('ENV q="a b" r=c\\ d', "env", ("PATH=/bin", "q=a b", "r=c d")),
    ("ARG A=1\nENV B=$A", "env", ("PATH=/bin", "B=1")),
    ("ARG X=arg\nENV X=env\nENV Y=$X", "env", ("PATH=/bin", "X=env", "Y=env")),
    ("ENV V=a.tar.gz\nENV W=${V%%.*}", "env", ("PATH=/bin", "V=a.tar.gz", "W=a")),
    ('LABEL a=1 b="x y"\nLABEL a=2', "labels", {"a": "2", "b": "x y"}),
    (
        "EXPOSE 80 53/udp 8000-8001/TCP",
        "exposed_ports",
        ("53/udp", "80/tcp", "8000/tcp", "8001/tcp"),
    ),
    ('VOLUME /a\nVOLUME ["/b", "/c"]', "volumes", ("/a", "/b", "/c")),
    ("WORKDIR /a\nWORKDIR b\nWORKDIR ../c", "working_dir", "/a/c"),
    ("ENV D=/data\nWORKDIR $D/x", "working_dir", "/data/x"),
    ("USER app:staff", "user", "app:staff"),
    ("ARG U=1000\nUSER $U", "user", "1000"),
    ("STOPSIGNAL SIGUSR1", "stop_signal", "SIGUSR1"),
    ('CMD ["a", "b"]', "cmd", ("a", "b")),
    ("CMD echo $HOME", "cmd", ("/bin/sh", "-c", "echo $HOME")),
    ('SHELL ["/bin/bash", "-e"]\nCMD echo x', "cmd", ("/bin/bash", "-e", "echo x")),
    ('SHELL ["/bin/bash", "-e"]', "shell", ("/bin/bash", "-e")),
    ("ENTRYPOINT echo x", "entrypoint", ("/bin/sh", "-c", "echo x")),
    ('CMD ["c"]\nENTRYPOINT ["e"]', "cmd", ("c",)),  # CMD set in this stage survives
    ("ONBUILD RUN echo hi", "onbuild", ("RUN echo hi",)),
]


@pytest.mark.parametrize(("body", "accessor", "expected"), CONFIG_CASES)
def test_config_after_dispatch(body: str, accessor: str, expected: Any) -> None:
    state, _, _ = run_lines(body)
    value = getattr(state.config, accessor)
    if isinstance(expected, tuple) and value is not None:
        value = tuple(sorted(value)) if accessor in ("exposed_ports", "volumes") else tuple(value)
    assert value == expected


def test_entrypoint_drops_inherited_cmd() -> None:
    state = StageState(config=ImageConfig.empty().with_cmd(["/bin/sh"]))
    instruction = parse('FROM scratch\nENTRYPOINT ["/bin/echo"]').stages[0].instructions[0]
    ctx = DispatchContext({}, "Dockerfile", "now", set(), {})
    assert dispatch(state, instruction, ctx).state.config.cmd is None


ARG_CASES: list[tuple[str, dict[str, str | None], dict[str, str], str]] = [
    # (body, --build-arg, global ARG values, expected `echo` output seen by RUN via env)
    ("ARG A=default\nRUN x", {}, {}, "A=default"),
    ("ARG A=default\nRUN x", {"A": "given"}, {}, "A=given"),
    ("ARG A\nRUN x", {}, {"A": "global"}, "A=global"),  # redeclared global ARG
    ("RUN x", {}, {"A": "global"}, ""),  # a global ARG is not visible without ARG
    ("ARG A\nRUN x", {}, {}, ""),  # declared without value: not in the environment
]


@pytest.mark.parametrize(("body", "given", "meta", "expected"), ARG_CASES)
def test_arg_visibility(
    body: str, given: dict[str, str | None], meta: dict[str, str], expected: str
) -> None:
    _, results, _ = run_lines(body, given, meta)
    effect = results[-1].effect
    assert isinstance(effect, RunEffect)
    found = [e for e in effect.env if e.startswith("A=")]
    assert found == ([expected] if expected else [])


HISTORY_CASES: list[tuple[str, dict[str, str | None], str]] = [
    ("RUN echo hi", {}, "RUN /bin/sh -c echo hi # buildkit"),
    ('RUN ["echo", "hi"]', {}, "RUN echo hi # buildkit"),
    ("ARG B=2 A=1\nRUN echo", {}, "RUN |2 B=2 A=1 /bin/sh -c echo # buildkit"),
    ("RUN echo", {"HTTP_PROXY": "http://p:3128"}, "RUN /bin/sh -c echo # buildkit"),
    ("COPY a b /d/", {}, "COPY a b /d/ # buildkit"),
]


@pytest.mark.parametrize(("body", "given", "created_by"), HISTORY_CASES)
def test_history_created_by(body: str, given: dict[str, str | None], created_by: str) -> None:
    _, results, _ = run_lines(body, given)
    history = results[-1].history
    assert history is not None and history.created_by == created_by


def test_proxy_args_reach_run_without_arg_and_count_as_used() -> None:
    _, results, used = run_lines("RUN env", {"HTTP_PROXY": "http://p:3128", "OTHER": "x"})
    effect = results[-1].effect
    assert isinstance(effect, RunEffect)
    assert "HTTP_PROXY=http://p:3128" in effect.env
    assert not any(e.startswith("OTHER=") for e in effect.env)
    assert used == {"HTTP_PROXY"}


def test_workdir_effect_carries_user_and_root_makes_none() -> None:
    _, results, _ = run_lines("USER app\nWORKDIR /w\nWORKDIR /")
    assert results[1].effect == WorkdirEffect(path="/w", user="app")
    assert results[2].effect is None
    assert results[2].history is not None and results[2].history.empty_layer


def test_copy_effect_expands_words_and_heredocs() -> None:
    body = (
        "ARG D=/dst\nARG W=world\n"
        "COPY --chown=app --exclude=*.md --parents src/ $D/\n"
        "COPY <<EOF <<'RAW' /h/\nhi $W \"q\"\nEOF\n$W\nRAW\n"
    )
    _, results, _ = run_lines(body)
    copy, heredoc = results[2].effect, results[3].effect
    assert isinstance(copy, CopyEffect) and isinstance(heredoc, CopyEffect)
    assert (copy.dest, copy.chown, copy.exclude, copy.parents) == ("/dst/", "app", ("*.md",), True)
    assert heredoc.heredocs == (("EOF", 'hi world "q"\n'), ("RAW", "$W\n"))


def test_add_effect_keeps_checksum_and_unpack() -> None:
    _, results, _ = run_lines("ADD --checksum=sha256:ab --unpack=false http://x/a.tar /d/")
    effect = results[0].effect
    assert isinstance(effect, CopyEffect) and effect.is_add
    assert (effect.checksum, effect.unpack) == ("sha256:ab", False)


@pytest.mark.parametrize(
    ("trigger", "message"),
    [("ONBUILD RUN x", "ONBUILD isn't allowed"), ("FROM x", "FROM isn't allowed")],
)
def test_onbuild_triggers_refuse_chaining(trigger: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message) as caught:
        trigger_instructions((trigger,), "base", "Dockerfile", _child_from())
    assert (caught.value.file, caught.value.line) == ("Dockerfile", 3)


def _child_from() -> FromInstruction:
    """The FROM of a child stage on line 3 (a trigger is located there, as in BuildKit)."""
    return parse("FROM base AS parent\n\nFROM parent\n", "Dockerfile").stages[1].from_


def test_onbuild_triggers_parse_in_order_located_at_the_child_from() -> None:
    parsed = trigger_instructions(
        ("RUN a", "COPY x /y", "ENV K=v"), "base", "Dockerfile", _child_from()
    )
    assert [i.keyword for i in parsed] == ["RUN", "COPY", "ENV"]
    assert {(i.line, i.end_line, i.source) for i in parsed} == {(3, 3, "FROM parent\n")}


def test_onbuild_trigger_parse_error_names_the_child_from() -> None:
    with pytest.raises(DockerfileError, match=r"Dockerfile:3: ONBUILD trigger 'COPY' of base"):
        trigger_instructions(("COPY",), "base", "Dockerfile", _child_from())


def test_platform_args_and_env_build_args() -> None:
    args = platform_args(Platform("linux", "arm", "v7"), Platform("linux", "amd64"))
    assert args["TARGETPLATFORM"] == "linux/arm/v7" and args["TARGETVARIANT"] == "v7"
    assert args["BUILDPLATFORM"] == "linux/amd64" and args["BUILDVARIANT"] == ""
    resolved = resolve_build_args({"A": None, "B": "b", "C": None}, {"A": "from-env"})
    assert resolved == {"A": "from-env", "B": "b", "C": None}


def test_unknown_variable_in_required_expansion_names_the_line() -> None:
    with pytest.raises(DockerfileError, match="Dockerfile:3"):
        run_lines("ENV A=1\nENV B=${MISSING:?must be set}")


ARG_NAME_CASES: list[tuple[str, dict[str, str | None], str, str]] = [
    # (body, --build-arg, name RUN sees, value): the name is expanded before it is declared.
    ("ENV src=file3\nARG ${src}=x\nRUN x", {}, "file3", "x"),
    ("ENV src=file3\nARG ${src}=x\nRUN x", {"file3": "given"}, "file3", "given"),
    ("ARG p=pre\nARG ${p}_v=1\nRUN x", {}, "pre_v", "1"),
    ("ENV n=late\nARG $n\nRUN x", {"late": "on"}, "late", "on"),  # declared, value from build
    ("ARG a=one ${a}_b=two\nRUN x", {}, "one_b", "two"),  # an earlier name of the same line
]


@pytest.mark.parametrize(("body", "given", "name", "value"), ARG_NAME_CASES)
def test_arg_names_are_expanded(
    body: str, given: dict[str, str | None], name: str, value: str
) -> None:
    state, results, used = run_lines(body, given)
    assert state.args[name] == value
    effect = results[-1].effect
    assert isinstance(effect, RunEffect) and f"{name}={value}" in effect.env
    assert "${" not in " ".join(state.args)  # nothing declared under its written name
    assert used == set(given)  # a build arg matching the expanded name counts as used


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("ARG ${unset}=x", "Dockerfile:2: ARG name '${unset}' expands to an empty string"),
        ("ENV kv=a=b\nARG $kv", "Dockerfile:3: ARG name '$kv' expands to 'a=b'"),
        ("ARG ${x:?unnamed}=1", "Dockerfile:2: failed to process '${x:?unnamed}': x: unnamed"),
    ],
)
def test_arg_name_that_expands_to_no_name_is_a_located_error(body: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=re.escape(message)):
        run_lines(body)
