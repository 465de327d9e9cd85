"""What scripts rely on from `kiln build`: exit status, stdout, timestamps, saved outputs.

Why end to end: CI scripts see only the process (its status, its stdout) and the files and
images it leaves; each test runs the real CLI against the real registry and judges the result
with skopeo (and kiln push, whose digest skopeo reads back from the registry).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tarfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.registry_e2e.conftest import raw_digest, unique, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = [pytest.mark.registry, pytest.mark.root]


def _kiln_build(
    registry: RegistryServer, context: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_kiln("build", "--insecure-registry", registry.host, *flags, str(context), env=env)


def _skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=120).stdout


def _layout_config(layout: Path) -> Any:
    return json.loads(_skopeo("inspect", "--config", "--raw", f"oci:{layout}:latest"))


@pytest.mark.parametrize("status", [3, 42])
def test_failed_run_is_the_exit_status(
    registry: RegistryServer, base_image: str, tmp_path: Path, status: int
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nRUN exit {status}\n")
    result = _kiln_build(registry, context, "--no-push")
    assert result.returncode == status, result.stderr
    assert f"exit code: {status}" in result.stderr
    assert result.stdout == ""


def test_killed_run_is_128_plus_the_signal(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nRUN kill -TERM $$\n")
    result = _kiln_build(registry, context, "--no-push")
    assert result.returncode == 128 + 15, result.stderr


def test_stdout_holds_only_the_digest(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"FROM {base_image}\nRUN echo run-says-stdout; echo run-says-stderr >&2\n",
    )
    digest_file = tmp_path / "digest"
    result = _kiln_build(registry, context, "--no-push", "--digest-file", str(digest_file))
    assert result.returncode == 0, result.stderr
    digest = digest_file.read_text()
    assert result.stdout == digest + "\n"
    assert "run-says-stdout" in result.stderr and "run-says-stderr" in result.stderr
    assert f"Built image; manifest digest {digest}" in result.stderr


@pytest.mark.parametrize("base", ["scratch", "busybox"])
def test_created_is_the_build_time(
    registry: RegistryServer, base_image: str, tmp_path: Path, base: str
) -> None:
    source = "scratch" if base == "scratch" else base_image
    context = write_context(tmp_path / "ctx", f"FROM {source}\nCOPY a /a\n", {"a": "a"})
    layout = tmp_path / "layout"
    before = datetime.now(UTC)
    result = _kiln_build(
        registry, context, "--no-push", "--image-format", "oci", "--oci-layout-path", str(layout)
    )
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    config = _layout_config(layout)
    created = datetime.fromisoformat(config["created"].replace("Z", "+00:00"))
    assert before <= created <= after
    assert config["history"][-1]["created"] == config["created"]


def _reproducible_build(
    registry: RegistryServer, source: Path, root: Path, env: dict[str, str] | None = None
) -> tuple[str, Path]:
    context = root / "ctx"
    shutil.copytree(source, context)  # fresh files: new mtimes, a new directory
    layout = root / "layout"
    result = _kiln_build(
        registry, context, "--no-push", "--reproducible", "--work-dir", str(root / "work"),
        "--oci-layout-path", str(layout), "--image-format", "oci", env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip(), layout


def test_reproducible_builds_give_the_same_digest(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    source = write_context(
        tmp_path / "source",
        f"FROM {base_image}\nCOPY app /app/\nRUN mkdir -p /made && touch /made/file\nWORKDIR /w\n",
        {"app": "payload\n"},
    )
    first, layout = _reproducible_build(registry, source, tmp_path / "one")
    time.sleep(1.5)  # the second build runs at another second: any timestamp would differ
    second, _ = _reproducible_build(registry, source, tmp_path / "two")
    assert first == second
    config = _layout_config(layout)
    assert config["created"] == "1970-01-01T00:00:00Z"
    own = config["history"][-3:]  # COPY, RUN, WORKDIR
    assert {h["created"] for h in own} == {"1970-01-01T00:00:00Z"}, own
    manifest = json.loads(_skopeo("inspect", "--raw", f"oci:{layout}:latest"))
    for layer in manifest["layers"][-3:]:  # kiln's layers: every file time clamped to 0
        blob = layout / "blobs" / "sha256" / layer["digest"].split(":")[1]
        with tarfile.open(blob, "r:*") as tar:
            assert {member.mtime for member in tar} <= {0}
    epoch = 1_700_000_000
    third, layout3 = _reproducible_build(
        registry, source, tmp_path / "three", env={"SOURCE_DATE_EPOCH": str(epoch)}
    )
    assert third != first
    assert _layout_config(layout3)["created"] == "2023-11-14T22:13:20Z"


def test_bad_source_date_epoch_is_a_usage_error(registry: RegistryServer, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    result = _kiln_build(
        registry, context, "--no-push", "--reproducible", env={"SOURCE_DATE_EPOCH": "yesterday"}
    )
    assert result.returncode == 2
    assert "SOURCE_DATE_EPOCH='yesterday' is not a number" in result.stderr


@pytest.mark.parametrize("image_format", ["docker", "oci"])
def test_saved_outputs_hold_the_printed_digest(
    registry: RegistryServer, base_image: str, tmp_path: Path, image_format: str
) -> None:
    context = write_context(
        tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\nRUN echo x > /b\n", {"a": "saved"}
    )
    layout, tarball, digest_file = tmp_path / "layout", tmp_path / "image.tar", tmp_path / "d"
    dest = f"{registry.host}/{unique('cli')}:v1"
    result = _kiln_build(
        registry, context, "-t", dest, "--image-format", image_format,
        "--oci-layout-path", str(layout), "--tar-path", str(tarball),
        "--digest-file", str(digest_file),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    digest = result.stdout.strip()
    assert digest_file.read_text() == digest == raw_digest(dest)
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest
    with tarfile.open(tarball) as tar:
        (in_tar,) = json.loads(tar.extractfile("index.json").read())["manifests"]  # type: ignore[union-attr]
    assert in_tar["digest"] == digest
    if image_format == "oci":  # skopeo reads OCI manifests from layouts (not Docker ones)
        raw = _skopeo("inspect", "--raw", f"oci:{layout}:v1")
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
        raw = _skopeo("inspect", "--raw", f"oci-archive:{tarball}")
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    loaded = json.loads(_skopeo("inspect", f"docker-archive:{tarball}"))  # the classic view
    assert len(loaded["Layers"]) == len(json.loads(_skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{dest}"))["layers"])  # fmt: skip
    for source in (layout, tarball):
        again = f"{registry.host}/{unique('cli')}:again"
        pushed = run_kiln("push", str(source), "-d", again, "--insecure-registry", registry.host)
        assert pushed.returncode == 0, pushed.stderr
        assert pushed.stdout.strip() == digest == raw_digest(again)


def test_relative_work_and_cache_dirs(tmp_path: Path) -> None:
    # A relative --work-dir once ended in a ValueError traceback: the COPY's paths were resolved
    # but the rootfs path was not, so one was not "in the subpath" of the other.
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY Dockerfile /d\n")
    result = run_kiln(
        "build", "--no-push", "--work-dir", "work", "--cache-dir", "cache", "--tar-path",
        "out.tar", str(context), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "out.tar").is_file()
    assert list((tmp_path / "work").iterdir()) == []  # the workspace was removed
    assert any((tmp_path / "cache").rglob("sha256"))  # the cache dir was used where named
