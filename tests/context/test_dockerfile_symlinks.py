"""The Dockerfile, a `-f` path and `.dockerignore` that are symlinks resolve inside the context
(as BuildKit reads them from the transferred context), never on the host: a fetched context
must not make kiln read, or print, a host file. Real builds through the CLI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kiln.context import open_context
from tests.context.test_special_files import archive_paths
from tests.support.tools import run_kiln

HOST_SECRET = "host-secret-line: must never be printed\n"


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    """A file on the host, outside every context, with a recognisable first line."""
    path = tmp_path / "host" / "secret"
    path.parent.mkdir()
    path.write_text(HOST_SECRET + "[Local-Only]\n")  # also a bad ignore pattern, if read
    return path


def _tree(root: Path, files: dict[str, str], links: dict[str, str]) -> Path:
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    for rel, target in links.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, root / rel)
    return root


def _tarball(tmp_path: Path, files: dict[str, str], links: dict[str, str]) -> str:
    tree = _tree(tmp_path / "tree", files, links)
    archive = tmp_path / "context.tar"
    subprocess.run(["tar", "-C", str(tree), "-cf", str(archive), "."], check=True)
    return f"tar://{archive}"


def _build(tmp_path: Path, context: str, *extra: str) -> subprocess.CompletedProcess[str]:
    out = tmp_path / "image.tar"
    return run_kiln("build", "--no-push", "--tar-path", str(out), *extra, context)


def _levels_up(host_file: Path) -> str:
    """A relative target that climbs out of any temporary directory to ``host_file``."""
    return "../" * 12 + str(host_file).lstrip("/")


@pytest.mark.parametrize("kind", ["absolute", "dotdot"])
def test_a_dockerfile_linking_out_of_a_tar_context_reads_nothing_of_the_host(
    tmp_path: Path, host_file: Path, kind: str
) -> None:
    target = str(host_file) if kind == "absolute" else _levels_up(host_file)
    context = _tarball(tmp_path, {"a.txt": "a"}, {"Dockerfile": target})
    result = _build(tmp_path, context)
    assert result.returncode != 0
    assert "host-secret-line" not in result.stdout + result.stderr
    assert "Dockerfile" in result.stderr and "does not exist" in result.stderr


def test_a_dash_f_path_linking_out_of_a_tar_context_reads_nothing_of_the_host(
    tmp_path: Path, host_file: Path
) -> None:
    context = _tarball(tmp_path, {"a.txt": "a"}, {"build/app.Dockerfile": _levels_up(host_file)})
    result = _build(tmp_path, context, "-f", "build/app.Dockerfile")
    assert result.returncode != 0
    assert "host-secret-line" not in result.stdout + result.stderr


def test_symlinks_inside_a_tar_context_resolve_inside_it(tmp_path: Path, host_file: Path) -> None:
    files = {
        "docker/Dockerfile.real": "FROM scratch\nCOPY . /ctx/\n",
        "docker/ignore.real": "secret.txt\n",
        "secret.txt": "s",
        "a.txt": "a",
    }
    links = {
        "Dockerfile": "/docker/Dockerfile.real",  # absolute: means the context's /docker
        ".dockerignore": "../../docker/ignore.real",  # `..` stops at the context root
    }
    result = _build(tmp_path, _tarball(tmp_path, files, links))
    assert result.returncode == 0, result.stderr
    paths = archive_paths(tmp_path / "image.tar")
    assert "ctx/a.txt" in paths and "ctx/secret.txt" not in paths


def test_a_dockerignore_linking_to_the_host_is_not_read(tmp_path: Path) -> None:
    host_ignore = tmp_path / "host" / "ignore"
    host_ignore.parent.mkdir()
    host_ignore.write_text("a.txt\n")  # would leave a.txt out, if it were read
    files = {"Dockerfile": "FROM scratch\nCOPY . /ctx/\n", "a.txt": "a"}
    context = _tarball(tmp_path, files, {".dockerignore": str(host_ignore)})
    result = _build(tmp_path, context)
    assert result.returncode == 0, result.stderr
    assert "ctx/a.txt" in archive_paths(tmp_path / "image.tar")


def test_a_local_dockerfile_symlink_resolves_inside_the_context(tmp_path: Path) -> None:
    files = {"docker/Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "a"}
    context = _tree(tmp_path / "ctx", files, {"Dockerfile": "/docker/Dockerfile"})
    result = _build(tmp_path, str(context))
    assert result.returncode == 0, result.stderr
    assert "a.txt" in archive_paths(tmp_path / "image.tar")


def test_links_resolve_inside_a_context_reached_through_a_symlinked_path(tmp_path: Path) -> None:
    """The context's own path may go through symlinks; links *inside* it still stay inside."""
    files = {"Dockerfile": "FROM scratch\n", "x.ignore": "secret.txt\n", "secret.txt": "s"}
    real = _tree(tmp_path / "real", files, {"Dockerfile.dockerignore": "/x.ignore"})
    os.symlink(real, tmp_path / "via-link")
    with open_context(str(tmp_path / "via-link")) as context:
        assert context.ignore.matches("secret.txt")
        assert context.dockerfile == real / "Dockerfile"
