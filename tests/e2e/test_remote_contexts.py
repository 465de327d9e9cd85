"""End to end: `kiln build` with fetched contexts (git over smart HTTP, a tarball on stdin)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.source_servers import GIT_CREDENTIALS, GitFixture
from tests.support.tools import run_kiln


def test_git_context_with_sub_path_and_dockerfile_on_stdin(
    registry: RegistryServer, base_image: str, podman: Podman, git_sources: GitFixture
) -> None:
    ref = f"{registry.host}/e2e/git-context:1"
    dockerfile = (
        f'FROM {base_image}\nCOPY b.txt /b.txt\nRUN echo "built from $(cat /b.txt)" > /out\n'
    )
    user, password = GIT_CREDENTIALS
    result = run_kiln(
        "build",
        "--context",
        f"{git_sources.http.url}/git/app.git#v1",
        "--context-sub-path",
        "sub",
        "--git",
        "depth=1,single-branch=true",
        "--dockerfile",
        "-",
        "-d",
        ref,
        "--insecure-registry",
        registry.host,
        env={"GIT_USERNAME": user, "GIT_PASSWORD": password},
        input=dockerfile,
    )
    assert result.returncode == 0, result.stderr
    assert password not in result.stderr + result.stdout
    assert podman.run(ref, "cat", "/out").stdout == "built from b\n"


def test_tar_context_on_stdin(
    registry: RegistryServer, base_image: str, podman: Podman, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "Dockerfile").write_text(f"FROM {base_image}\nCOPY msg /msg\n")
    (source / "msg").write_text("from a piped tarball\n")
    archive = subprocess.run(
        ["tar", "-C", str(source), "-c", "."], capture_output=True, check=True
    ).stdout
    ref = f"{registry.host}/e2e/stdin-context:1"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiln.cli.main",
            "build",
            "-t",
            ref,
            "--insecure-registry",
            registry.host,
            "-",
        ],
        input=archive,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert podman.run(ref, "cat", "/msg").stdout == "from a piped tarball\n"


def test_both_on_stdin_is_refused() -> None:
    result = run_kiln("build", "--no-push", "-f", "-", "-")
    assert result.returncode == 2
    assert "cannot both come from standard input" in result.stderr
