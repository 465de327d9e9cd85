"""Faults between kiln and a real registry: a seeded, bounded fault-injecting proxy.

Pushes and pulls through the proxy must succeed with retries and give byte-identical results;
a fault that never heals must fail clearly without leaving a tag that points at missing blobs.
"""

from __future__ import annotations

import io
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.registry import RegistryClient
from tests.registry.images import sha256
from tests.registry_e2e.conftest import raw_digest, unique, write_context
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as server:
        yield server


@pytest.fixture(scope="module")
def layered_context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three COPY layers of incompressible data on the busybox base (filled in per test)."""
    root = tmp_path_factory.mktemp("layered")
    for name in ("a", "b", "c"):
        (root / name).write_bytes(os.urandom(300_000))
    return root


def _dockerfile(context: Path, base: str) -> Path:
    return write_context(context, f"FROM {base}\nCOPY a /a\nCOPY b /b\nCOPY c /c\n")


def test_push_and_pull_through_faults_are_byte_identical(
    registry: RegistryServer, proxy: FaultProxy, base_image: str, layered_context: Path
) -> None:
    repository = base_image.split("/", 1)[1]
    clean_dest = f"{registry.host}/{unique()}:v1"
    _dockerfile(layered_context, base_image)
    clean = run_kiln(
        "build", "--reproducible", "-t", clean_dest, "--insecure-registry", registry.host,
        str(layered_context),
    )  # fmt: skip
    assert clean.returncode == 0, clean.stderr

    proxy.rate, proxy.seed = 0.35, 7
    faulty_repo = unique()
    _dockerfile(layered_context, f"{proxy.host}/{repository}")
    faulty = run_kiln(
        "build", "--reproducible", "-t", f"{proxy.host}/{faulty_repo}:v1",
        "--insecure-registry", proxy.host, "--push-retry", "4", "--image-download-retry", "4",
        str(layered_context),
    )  # fmt: skip
    assert faulty.returncode == 0, faulty.stderr
    kinds = set(proxy.faults())
    assert len(proxy.faults()) >= 5 and {"status", "reset", "truncate"} <= kinds, kinds
    assert proxy.count("GET", "/blobs/sha256:") > 0  # the base image was pulled through it
    assert faulty.stdout.split()[-1] == clean.stdout.split()[-1]
    # Independently: the registry holds the same manifest bytes under both names.
    assert raw_digest(f"{registry.host}/{faulty_repo}:v1") == raw_digest(clean_dest)


def test_fault_that_never_heals_fails_without_a_tag(
    registry: RegistryServer, proxy: FaultProxy, base_image: str, tmp_path: Path
) -> None:
    repo = unique()

    def broken_uploads(method: str, path: str) -> Fault | None:
        if method in ("PUT", "PATCH") and "/blobs/uploads/" in path:
            return Fault("status", status=503)
        return None

    proxy.rule = broken_uploads
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\nCOPY b /b\n",
                            {"a": "a" * 5000, "b": "b" * 5000})  # fmt: skip
    dest = f"{proxy.host}/{repo}:v1"
    result = run_kiln("build", "-t", dest, "--insecure-registry", proxy.host,
                      "--push-retry", "1", str(context))  # fmt: skip
    assert result.returncode != 0
    assert dest in result.stderr and "no tag was changed" in result.stderr
    assert "HTTP 503" in result.stderr and "Traceback" not in result.stderr
    assert proxy.count("PUT", "/manifests/") == 0
    inspect = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{repo}:v1"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert inspect.returncode != 0 and "manifest unknown" in inspect.stderr.lower()


def test_chunked_upload_resumes_from_registry_range(proxy: FaultProxy) -> None:
    blob = os.urandom(1024 * 1024)
    seen_patches: list[str] = []

    def third_patch_fails(method: str, path: str) -> Fault | None:
        if method == "PATCH":
            seen_patches.append(path)
            if len(seen_patches) == 3:
                return Fault("status", status=503)
        return None

    proxy.rule = third_patch_fails
    repo = unique()
    with RegistryClient(proxy.host, insecure=True, chunk_size=128 * 1024) as client:
        client.upload_blob(repo, sha256(blob), len(blob), lambda: io.BytesIO(blob))
        out = io.BytesIO()
        client.fetch_blob(repo, sha256(blob), out)
    assert out.getvalue() == blob
    assert len(seen_patches) == 8 + 1  # one chunk sent twice, nothing else
    assert proxy.count("POST", "/blobs/uploads/") == 1  # resumed, not restarted
    assert proxy.count("GET", "/blobs/uploads/") == 1  # asked the registry for its Range


def test_chunked_upload_restarts_when_the_registry_lost_the_session(proxy: FaultProxy) -> None:
    blob = os.urandom(512 * 1024)
    patches: list[str] = []

    def reset_second_patch(method: str, path: str) -> Fault | None:
        if method == "PATCH":
            patches.append(path)
            if len(patches) == 2:
                return Fault("reset")  # forwarded, then the answer is lost
        return None

    proxy.rule = reset_second_patch
    repo = unique()
    with RegistryClient(proxy.host, insecure=True, chunk_size=128 * 1024) as client:
        client.upload_blob(repo, sha256(blob), len(blob), lambda: io.BytesIO(blob))
        assert client.blob_exists(repo, sha256(blob))
    assert proxy.count("POST", "/blobs/uploads/") >= 1
