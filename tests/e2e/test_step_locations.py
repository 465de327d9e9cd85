"""A step that fails while it runs (a missing COPY source, a failing RUN) names its Dockerfile
line and shows the instruction, as BuildKit does."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_build_push_run import write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln


def _build(registry: RegistryServer, context: Path, tmp_path: Path) -> str:
    """Build to a tarball; return stderr of the failed build."""
    result = run_kiln(
        "build",
        "--no-push",
        "--tar-path",
        str(tmp_path / "out.tar"),
        "--insecure-registry",
        registry.host,
        str(context),
    )
    assert result.returncode != 0
    return result.stderr


def test_missing_copy_source_names_line_and_instruction(
    registry: RegistryServer, tmp_path: Path
) -> None:
    dockerfile = """
        FROM scratch
        COPY present.txt /present.txt
        COPY missing.txt \\
             /missing.txt
    """
    context = write_context(tmp_path / "ctx", dockerfile, {"present.txt": "here\n"})
    stderr = _build(registry, context, tmp_path)
    assert f"{context / 'Dockerfile'}:3\n" in stderr
    assert " 3 | >>> COPY missing.txt \\\n 4 | >>>      /missing.txt\n" in stderr
    assert "stat missing.txt: file does not exist" in stderr
    assert ">>> COPY present.txt" not in stderr


def test_failing_run_names_line_and_instruction(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dockerfile = f"""
        FROM {base_image}
        ENV A=1
        RUN echo about to fail && exit 9
        RUN echo never
    """
    context = write_context(tmp_path / "ctx", dockerfile)
    stderr = _build(registry, context, tmp_path)
    assert f"{context / 'Dockerfile'}:3\n" in stderr
    assert " 3 | >>> RUN echo about to fail && exit 9\n" in stderr
    assert "exit code: 9" in stderr
    assert "RUN echo never" not in stderr


def test_missing_base_image_names_its_from_line(registry: RegistryServer, tmp_path: Path) -> None:
    dockerfile = f"""
        FROM scratch AS first
        COPY present.txt /present.txt

        FROM {registry.host}/no/such-image:1
        COPY --from=first /present.txt /
    """
    context = write_context(tmp_path / "ctx", dockerfile, {"present.txt": "here\n"})
    stderr = _build(registry, context, tmp_path)
    assert f"{context / 'Dockerfile'}:4\n" in stderr
    assert f" 4 | >>> FROM {registry.host}/no/such-image:1\n" in stderr
