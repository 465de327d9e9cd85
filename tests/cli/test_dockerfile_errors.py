"""`kiln parse` and `kiln build` turn bad Dockerfiles into `FILE:LINE: problem`, no traceback.

The build cases fail before anything is pulled or run: they use `FROM scratch` or an image that
does not exist, and no registry, so reaching a pull or a RUN would fail differently.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.tools import run_kiln

BAD_DOCKERFILES = [
    # (Dockerfile bytes, line, what the message says)
    (b"FROM scratch\nLABEL a=\xff\xfe\n", 2, "not valid UTF-8: byte 0xff at column 9"),
    (b"ARG A=${B:?B-needed}\nFROM scratch\n", 1, "B: B-needed"),
    (b"FROM scratch\nFROM ${IMG\n", 2, "missing '}'"),
    (b"ARG V=" + b"${a:-" * 500 + b"}" * 500 + b"\nFROM x\n", 1, "nested more than 64 levels"),
]


@pytest.mark.parametrize(("data", "line", "message"), BAD_DOCKERFILES)
def test_parse_and_build_locate_the_error(
    tmp_path: Path, data: bytes, line: int, message: str
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    dockerfile = context / "Dockerfile"
    dockerfile.write_bytes(data)
    parsed = run_kiln("parse", str(dockerfile))
    build = run_kiln("build", "--no-push", "--tar-path", str(tmp_path / "o.tar"), str(context))
    for result, stage in ((parsed, "parse"), (build, "build")):
        if stage == "parse" and b"\xff" not in data:
            # Expansion happens only when building: `kiln parse` shows the words as written.
            assert result.returncode == 0, result.stderr
            continue
        assert result.returncode == 1, (stage, result.stderr)
        assert f"{dockerfile}:{line}: " in result.stderr, (stage, result.stderr)
        assert message in result.stderr, (stage, result.stderr)
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.tar").exists()


def test_build_refuses_run_mount_before_running_anything(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "a").write_text("a\n")
    dockerfile = context / "Dockerfile"
    # The COPY before the RUN would succeed; the refusal comes first, so nothing is built.
    dockerfile.write_text("FROM scratch\nCOPY a /a\nRUN --mount=type=cache,target=/c true\n")
    result = run_kiln("build", "--no-push", "--tar-path", str(tmp_path / "o.tar"), str(context))
    assert result.returncode == 1
    assert (
        f"{dockerfile}:3: RUN --mount=type=cache,target=/c is not supported by kiln yet"
        in result.stderr
    )
    assert "STEP" not in result.stderr + result.stdout
    assert not (tmp_path / "o.tar").exists()


def test_build_refuses_unsupported_flags_only_in_stages_it_builds(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM scratch AS unused\nRUN --network=none true\nFROM scratch\nENV A=1\n"
    )
    out = tmp_path / "o.tar"
    result = run_kiln("build", "--no-push", "--tar-path", str(out), str(context))
    assert result.returncode == 0, result.stderr
    assert out.exists()
