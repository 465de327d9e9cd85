"""Archive contexts from every place: compressed files, stdin, an HTTP server, cloud buckets."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.context import open_context
from kiln.errors import ContextError
from tests.context.conftest import GitFixture, make_tree

TREE = {"Dockerfile": "FROM scratch\nCOPY . /\n", "app/main.txt": "main", "app/Dockerfile": "x"}


def _archive(tmp_path: Path, compressor: list[str] | None, name: str) -> Path:
    source = make_tree(tmp_path / "src", TREE)
    plain = tmp_path / "ctx.tar"
    subprocess.run(["tar", "-C", str(source), "-cf", str(plain), "."], check=True)
    if compressor is None:
        return plain
    out = tmp_path / name
    with open(plain, "rb") as src, open(out, "wb") as dst:
        subprocess.run([*compressor, "-c"], stdin=src, stdout=dst, check=True)
    return out


@pytest.mark.parametrize(
    ("compressor", "name"),
    [
        (None, "ctx.tar"),
        (["gzip"], "ctx.tar.gz"),
        (["bzip2"], "ctx.tar.bz2"),
        (["xz"], "ctx.tar.xz"),
        (["zstd", "-q"], "ctx.tar.zst"),
    ],
)
def test_every_compression(tmp_path: Path, compressor: list[str] | None, name: str) -> None:
    archive = _archive(tmp_path, compressor, name)
    with open_context(f"tar://{archive}") as ctx:
        assert (ctx.root / "app/main.txt").read_text() == "main"


def test_zstd_without_the_zstd_command_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = _archive(tmp_path, ["zstd", "-q"], "ctx.tar.zst")
    monkeypatch.setattr(shutil, "which", lambda *_a, **_k: None)
    with pytest.raises(ContextError, match="zstd command is not installed"):
        open_context(f"tar://{archive}")


@pytest.mark.parametrize("spec", ["-", "tar://stdin"])
def test_archive_on_stdin(tmp_path: Path, spec: str) -> None:
    data = _archive(tmp_path, ["gzip"], "ctx.tar.gz").read_bytes()
    with open_context(spec, stdin=io.BytesIO(data)) as ctx:
        assert (ctx.root / "app/main.txt").read_text() == "main"


def test_empty_stdin_is_a_clear_error() -> None:
    with pytest.raises(ContextError, match="standard input is empty"):
        open_context("-", stdin=io.BytesIO(b""))


def test_context_sub_path_in_archives_and_directories(tmp_path: Path) -> None:
    archive = _archive(tmp_path, ["gzip"], "ctx.tar.gz")
    with open_context(f"tar://{archive}", sub_path="app", dockerfile=Path("Dockerfile")) as ctx:
        assert ctx.root.name == "app"
        assert ctx.dockerfile == ctx.root / "Dockerfile"  # type: ignore[attr-defined]
    with open_context(str(tmp_path / "src"), sub_path="/app/") as ctx:
        assert (ctx.root / "main.txt").read_text() == "main"
    # ".." stays inside the context, as every path in a context does
    with open_context(str(tmp_path / "src"), sub_path="../../app") as ctx:
        assert ctx.root == (tmp_path / "src" / "app").resolve()
    with pytest.raises(ContextError, match="is not a directory in the build context"):
        open_context(str(tmp_path / "src"), sub_path="app/main.txt")


def test_dockerfile_outside_a_fetched_context(tmp_path: Path) -> None:
    archive = _archive(tmp_path, None, "ctx.tar")
    outside = tmp_path / "elsewhere.Dockerfile"
    outside.write_text("FROM scratch\n")
    with open_context(f"tar://{archive}", dockerfile=outside) as ctx:
        assert ctx.dockerfile == outside  # type: ignore[attr-defined]
    relative = Path("elsewhere.Dockerfile")  # not in the archive: taken from the working dir
    with open_context(f"tar://{archive}", dockerfile=relative, workdir=tmp_path) as ctx:
        assert ctx.dockerfile == tmp_path / relative  # type: ignore[attr-defined]


def test_tarball_url(tmp_path: Path, git_sources: GitFixture) -> None:
    archive = _archive(tmp_path, ["gzip"], "ctx.tar.gz")
    served = git_sources.http.files_root / "url-ctx.tar.gz"
    shutil.copy(archive, served)
    with open_context(f"{git_sources.http.url}/files/url-ctx.tar.gz") as ctx:
        assert (ctx.root / "app/main.txt").read_text() == "main"
    with pytest.raises(ContextError, match="HTTP 404"):
        open_context(f"{git_sources.http.url}/files/missing.tar.gz")


@pytest.mark.parametrize(
    ("spec", "module", "extra"),
    [
        ("s3://bucket/ctx.tar.gz", "boto3", "s3"),
        ("gs://bucket/ctx.tar.gz", "google.cloud.storage", "gcs"),
        ("https://acct.blob.core.windows.net/c/ctx.tar.gz", "azure.storage.blob", "azure"),
    ],
)
def test_cloud_contexts_name_the_missing_extra(
    monkeypatch: pytest.MonkeyPatch, spec: str, module: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail as if not installed
    with pytest.raises(ContextError, match="which is not installed") as info:
        open_context(spec)
    assert f"pip install 'kiln-builder[{extra}]'" in str(info.value)
