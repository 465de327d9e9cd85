"""Parse cases from the Dockerfile reference: snippet -> typed instruction fields.

Each snippet is appended to ``FROM scratch`` (unless it starts with FROM) and the *last*
instruction is compared field by field with the expected values, so every row pins down the
exact unexpanded shape the build receives.
"""

from __future__ import annotations

from typing import Any

import pytest

from kiln.dockerfile import (
    AddInstruction,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    HealthcheckInstruction,
    Heredoc,
    Instruction,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
    parse,
)

S = 1_000_000_000  # one second in nanoseconds

CASES: list[tuple[str, type[Instruction], dict[str, Any]]] = [
    # FROM
    ("FROM alpine:3.19", FromInstruction, {"image": "alpine:3.19", "name": None}),
    ("FROM alpine AS Build", FromInstruction, {"image": "alpine", "name": "build"}),
    ("from alpine as b", FromInstruction, {"keyword": "FROM", "name": "b"}),
    (
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS build",
        FromInstruction,
        {
            "image": "golang:1.22",
            "platform": "$BUILDPLATFORM",
            "flags": {"platform": "$BUILDPLATFORM"},
        },
    ),
    ("FROM ${BASE:-busybox}", FromInstruction, {"image": "${BASE:-busybox}"}),
    # RUN
    ("RUN echo hello", RunInstruction, {"command": "echo hello", "exec_form": False}),
    ('RUN ["echo", "hello"]', RunInstruction, {"command": ["echo", "hello"], "exec_form": True}),
    ('RUN [ "a" ]  ', RunInstruction, {"command": ["a"], "exec_form": True}),
    ("RUN []", RunInstruction, {"command": [], "exec_form": True}),
    (
        'RUN ["a\\"b", "\\\\", "\\/", "\\b\\f\\n\\r\\t", "\\u00e9"]',
        RunInstruction,
        {"command": ['a"b', "\\", "/", "\b\f\n\r\t", "\u00e9"]},
    ),
    ("RUN [echo, hello]", RunInstruction, {"command": "[echo, hello]", "exec_form": False}),
    ("RUN ['single']", RunInstruction, {"command": "['single']", "exec_form": False}),
    ('RUN ["unterminated"', RunInstruction, {"command": '["unterminated"', "exec_form": False}),
    ("RUN echo $HOME 'q' \"d\"", RunInstruction, {"command": "echo $HOME 'q' \"d\""}),
    ("run echo lower", RunInstruction, {"keyword": "RUN", "command": "echo lower"}),
    ("RUN echo a \\\n    b", RunInstruction, {"command": "echo a     b", "line": 2, "end_line": 3}),
    ("RUN echo a \\  \n  b", RunInstruction, {"command": "echo a   b"}),
    ("RUN echo a\\\n# comment\n  b", RunInstruction, {"command": "echo a  b", "end_line": 4}),
    ("RUN echo a\\\n\n b", RunInstruction, {"command": "echo a b", "end_line": 4}),
    (
        "RUN --mount=type=cache,target=/root/.cache --mount=type=secret,id=x --network=none make",
        RunInstruction,
        {
            "command": "make",
            "mounts": ("type=cache,target=/root/.cache", "type=secret,id=x"),
            "network": "none",
            "flags": {"mount": "type=secret,id=x", "network": "none"},
        },
    ),
    ("RUN --security=insecure id", RunInstruction, {"security": "insecure", "command": "id"}),
    ("RUN -- --not-a-flag", RunInstruction, {"command": "--not-a-flag", "raw_flags": ()}),
    (
        'RUN --mount="type=bind,source=a b" ls',
        RunInstruction,
        {"mounts": ("type=bind,source=a b",)},
    ),
    # heredocs
    (
        "RUN <<EOF\necho hi\necho $X\nEOF",
        RunInstruction,
        {
            "command": "<<EOF",
            "heredocs": (Heredoc("EOF", "echo hi\necho $X\n", expand=True),),
            "end_line": 5,
        },
    ),
    (
        "RUN <<A cat - <<B > /out\na1\nA\nb1\nB",
        RunInstruction,
        {
            "command": "<<A cat - <<B > /out",
            "heredocs": (Heredoc("A", "a1\n"), Heredoc("B", "b1\n")),
        },
    ),
    (
        "RUN <<-EOF\n\t\techo tab\n\tEOF",
        RunInstruction,
        {"heredocs": (Heredoc("EOF", "echo tab\n", expand=True, chomp=True),)},
    ),
    ('RUN <<"EOF"\n$X\nEOF', RunInstruction, {"heredocs": (Heredoc("EOF", "$X\n", expand=False),)}),
    ("RUN <<'EOF'\n$X\nEOF", RunInstruction, {"heredocs": (Heredoc("EOF", "$X\n", expand=False),)}),
    ('RUN <<E"O"F\nx\nEOF', RunInstruction, {"heredocs": (Heredoc("EOF", "x\n", expand=False),)}),
    (
        "RUN 3<<EOF cat /dev/fd/3\nx\nEOF",
        RunInstruction,
        {"heredocs": (Heredoc("EOF", "x\n", fd=3),)},
    ),
    ("RUN <<EOF\n\nEOF", RunInstruction, {"heredocs": (Heredoc("EOF", "\n"),)}),
    ("RUN <<EOF\nEOF", RunInstruction, {"heredocs": (Heredoc("EOF", ""),)}),
    ("RUN echo '<<EOF'", RunInstruction, {"heredocs": (), "command": "echo '<<EOF'"}),
    ("RUN echo a<<b", RunInstruction, {"heredocs": (), "command": "echo a<<b"}),
    ('RUN ["sh", "-c", "<<EOF"]', RunInstruction, {"heredocs": (), "exec_form": True}),
    # CMD / ENTRYPOINT / SHELL
    (
        'CMD ["nginx", "-g", "daemon off;"]',
        CmdInstruction,
        {"command": ["nginx", "-g", "daemon off;"]},
    ),
    ("CMD echo $HOME", CmdInstruction, {"command": "echo $HOME", "exec_form": False}),
    ("CMD", CmdInstruction, {"command": "", "exec_form": False}),
    ("ENTRYPOINT []", EntrypointInstruction, {"command": [], "exec_form": True}),
    ("ENTRYPOINT exec top -b", EntrypointInstruction, {"command": "exec top -b"}),
    (
        'SHELL ["/bin/bash", "-o", "pipefail", "-c"]',
        ShellInstruction,
        {"shell": ["/bin/bash", "-o", "pipefail", "-c"]},
    ),
    # ENV / LABEL / ARG
    ("ENV a=1", EnvInstruction, {"pairs": (("a", "1"),), "legacy": False}),
    (
        'ENV a=1 b="x y" c=x\\ y',
        EnvInstruction,
        {"pairs": (("a", "1"), ("b", '"x y"'), ("c", "x\\ y"))},
    ),
    ("ENV k v w", EnvInstruction, {"pairs": (("k", "v w"),), "legacy": True}),
    ("ENV k   spaced  out", EnvInstruction, {"pairs": (("k", "spaced  out"),)}),
    ("ENV a=", EnvInstruction, {"pairs": (("a", ""),)}),
    ("ENV a=$b c='${d}'", EnvInstruction, {"pairs": (("a", "$b"), ("c", "'${d}'"))}),
    ('ENV a="x \\" y"', EnvInstruction, {"pairs": (("a", '"x \\" y"'),)}),
    (
        'LABEL "com.example.vendor"="ACME" version=1.0',
        LabelInstruction,
        {"pairs": (('"com.example.vendor"', '"ACME"'), ("version", "1.0"))},
    ),
    ("LABEL description This text", LabelInstruction, {"pairs": (("description", "This text"),)}),
    ("ARG a", ArgInstruction, {"args": (("a", None),)}),
    ("ARG a=1 b c=", ArgInstruction, {"args": (("a", "1"), ("b", None), ("c", ""))}),
    ('ARG msg="hi there"', ArgInstruction, {"args": (("msg", '"hi there"'),)}),
    # EXPOSE / VOLUME / WORKDIR / USER / STOPSIGNAL / MAINTAINER
    ("EXPOSE 80 443/tcp 53/udp", ExposeInstruction, {"ports": ("80", "443/tcp", "53/udp")}),
    ("EXPOSE $PORT", ExposeInstruction, {"ports": ("$PORT",)}),
    ("VOLUME /data /logs", VolumeInstruction, {"paths": ("/data", "/logs")}),
    ('VOLUME ["/data", "/my logs"]', VolumeInstruction, {"paths": ("/data", "/my logs")}),
    ("WORKDIR /path/to $DIR", WorkdirInstruction, {"path": "/path/to $DIR"}),
    ("USER app:app", UserInstruction, {"user": "app:app"}),
    ("STOPSIGNAL SIGKILL", StopsignalInstruction, {"signal": "SIGKILL"}),
    ("MAINTAINER Jane <j@x>", MaintainerInstruction, {"name": "Jane <j@x>"}),
    # COPY / ADD
    ("COPY a b /dst/", CopyInstruction, {"sources": ("a", "b"), "dest": "/dst/", "from_": None}),
    ('COPY ["a b", "/d e/"]', CopyInstruction, {"sources": ("a b",), "dest": "/d e/"}),
    (
        "COPY --from=build --chown=1000:1000 --chmod=755 --link --parents ./x /y",
        CopyInstruction,
        {"from_": "build", "chown": "1000:1000", "chmod": "755", "link": True, "parents": True},
    ),
    ("COPY --link=false a /b", CopyInstruction, {"link": False, "flags": {"link": "false"}}),
    ("COPY --link=TRUE a /b", CopyInstruction, {"link": True}),
    ("COPY --exclude=*.md --exclude=tmp . /app", CopyInstruction, {"exclude": ("*.md", "tmp")}),
    (
        "COPY <<EOF /etc/motd\nhello $USER\nEOF",
        CopyInstruction,
        {"sources": (), "dest": "/etc/motd", "heredocs": (Heredoc("EOF", "hello $USER\n"),)},
    ),
    (
        "COPY <<a.sh <<'b.txt' /dst/\necho a\na.sh\n$b\nb.txt",
        CopyInstruction,
        {"heredocs": (Heredoc("a.sh", "echo a\n"), Heredoc("b.txt", "$b\n", expand=False))},
    ),
    (
        "COPY src <<EOF /d/\nx\nEOF",
        CopyInstruction,
        {"sources": ("src",), "heredocs": (Heredoc("EOF", "x\n"),)},
    ),
    (
        "ADD https://x/y.tar.gz /opt/",
        AddInstruction,
        {"sources": ("https://x/y.tar.gz",), "dest": "/opt/"},
    ),
    (
        "ADD --checksum=sha256:abc --keep-git-dir=true --unpack=false git@x:y.git /src",
        AddInstruction,
        {"checksum": "sha256:abc", "keep_git_dir": True, "unpack": False},
    ),
    ("ADD a /b", AddInstruction, {"unpack": None, "keep_git_dir": False, "checksum": None}),
    # HEALTHCHECK
    ("HEALTHCHECK NONE", HealthcheckInstruction, {"test": None}),
    ("HEALTHCHECK none", HealthcheckInstruction, {"test": None}),
    (
        "HEALTHCHECK CMD curl -f http://localhost/",
        HealthcheckInstruction,
        {"test": ["CMD-SHELL", "curl -f http://localhost/"], "interval": 0, "retries": 0},
    ),
    (
        'HEALTHCHECK CMD ["curl", "-f", "x"]',
        HealthcheckInstruction,
        {"test": ["CMD", "curl", "-f", "x"]},
    ),
    (
        "HEALTHCHECK --interval=5m --timeout=3s --start-period=1m30s --start-interval=500ms "
        "--retries=3 CMD true",
        HealthcheckInstruction,
        {
            "interval": 300 * S,
            "timeout": 3 * S,
            "start_period": 90 * S,
            "start_interval": S // 2,
            "retries": 3,
        },
    ),
    ("HEALTHCHECK --interval=0s CMD true", HealthcheckInstruction, {"interval": 0}),
    ("HEALTHCHECK --interval=1.5h CMD true", HealthcheckInstruction, {"interval": 5400 * S}),
    # ONBUILD
    ("ONBUILD ADD . /app/src", OnbuildInstruction, {"trigger": "ADD . /app/src"}),
    ("onbuild   RUN echo x", OnbuildInstruction, {"trigger": "RUN echo x"}),
    ("ONBUILD RUN <<EOF\necho hi\nEOF", OnbuildInstruction, {"trigger": "RUN <<EOF\necho hi\nEOF"}),
]


def _last(text: str) -> Instruction:
    source = text if text.upper().startswith("FROM") else "FROM scratch\n" + text
    dockerfile = parse(source)
    stage = dockerfile.stages[-1]
    return stage.instructions[-1] if stage.instructions else stage.from_


@pytest.mark.parametrize(("text", "cls", "expected"), CASES)
def test_parse_case(text: str, cls: type[Instruction], expected: dict[str, Any]) -> None:
    instruction = _last(text)
    assert type(instruction) is cls
    actual = {name: getattr(instruction, name) for name in expected}
    assert actual == expected


@pytest.mark.parametrize(("text", "cls", "expected"), CASES)
def test_keyword_is_upper_and_lines_are_sane(
    text: str, cls: type[Instruction], expected: dict[str, Any]
) -> None:
    instruction = _last(text)
    assert instruction.keyword == instruction.keyword.upper()
    assert 1 <= instruction.line <= instruction.end_line
    assert instruction.original.split()[0].upper() == instruction.keyword
