"""Output formats and push extras: OCI + zstd, digest files, immutable tags, permission checks,
platform selection from a three-platform index."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln.registry import RegistryClient
from tests.registry.images import OCI_INDEX, index_of, make_image, push_image
from tests.registry_e2e.conftest import raw_digest, unique, write_context
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry


def raw_manifest(ref: str) -> Any:
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return json.loads(out)


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as server:
        yield server


def test_oci_zstd_push_and_digest_files(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\n", {"a": "z" * 9000})
    dest = f"{registry.host}/{unique()}:v1"
    names, tagged = tmp_path / "names", tmp_path / "tagged"
    result = run_kiln(
        "build", "-t", dest, "--insecure-registry", registry.host, "--image-format", "oci",
        "--compression", "zstd", "--compression-level", "3",
        "--image-name-with-digest-file", str(names),
        "--image-name-tag-with-digest-file", str(tagged), str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    digest = result.stdout.split()[-1]
    manifest = raw_manifest(dest)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    types = [layer["mediaType"] for layer in manifest["layers"]]
    assert types[-1] == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert types[0] == "application/vnd.oci.image.layer.v1.tar+gzip"  # the base, unchanged bytes
    assert raw_digest(dest) == digest
    name = dest.rsplit(":", 1)[0]
    assert names.read_text() == f"{name}@{digest}\n"
    assert tagged.read_text() == f"{dest}@{digest}\n"


def test_zstd_needs_oci(tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    result = run_kiln("build", "--no-push", "--compression", "zstd", str(context))
    assert result.returncode == 2
    assert "zstd layers need OCI media types" in result.stderr


def test_immutable_tag_errors_can_be_ignored(proxy: FaultProxy, tmp_path: Path) -> None:
    refusal = json.dumps(
        {"errors": [{"code": "TAG_INVALID", "message": "tag v1 is immutable"}]}
    ).encode()
    proxy.rule = lambda method, path: (
        Fault("reply", status=400, body=refusal)
        if method == "PUT" and "/manifests/" in path
        else None
    )
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    common = ["build", "-t", f"{proxy.host}/{unique()}:v1", "--insecure-registry", proxy.host]
    refused = run_kiln(*common, str(context))
    assert refused.returncode == 1 and "TAG_INVALID" in refused.stderr
    ignored = run_kiln(*common, "--push-ignore-immutable-tag-errors", str(context))
    assert ignored.returncode == 0, ignored.stderr
    assert "immutable" in ignored.stderr


def test_push_permission_checked_before_building(
    proxy: FaultProxy, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    denied = json.dumps({"errors": [{"code": "DENIED", "message": "requested access denied"}]})
    proxy.rule = lambda method, path: (
        Fault("reply", status=403, body=denied.encode()) if method == "POST" else None
    )
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\n", {"a": "a"})
    common = ["build", "-t", f"{proxy.host}/{unique()}:v1", "--insecure-registry", proxy.host,
              "--insecure-registry", registry.host]  # fmt: skip
    early = run_kiln(*common, str(context))
    assert early.returncode == 1 and "no permission to push" in early.stderr
    assert "Retrieving image manifest" not in early.stderr  # nothing was built
    late = run_kiln(*common, "--skip-push-permission-check", str(context))
    assert late.returncode == 1 and "Retrieving image manifest" in late.stderr
    assert "DENIED" in late.stderr


def test_index_resolves_each_platform(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique("idx")
    images = {
        "amd64": (make_image("amd64"), {"os": "linux", "architecture": "amd64"}),
        "arm64": (make_image("arm64", "arm64"), {"os": "linux", "architecture": "arm64"}),
        "armv7": (
            make_image("armv7", "arm", "v7"),
            {"os": "linux", "architecture": "arm", "variant": "v7"},
        ),
    }
    with RegistryClient(registry.host, insecure=True) as client:
        for image, _ in images.values():
            push_image(client, repo, image.digest.replace(":", "-"), image)
        client.put_manifest(repo, "multi", index_of(list(images.values())), OCI_INDEX)
    base = f"{registry.host}/{repo}:multi"
    context = write_context(tmp_path / "ctx", f"FROM {base}\nCOPY a /a\n", {"a": "a"})
    for platform, marker in (
        ("linux/arm/v7", "armv7"), ("linux/arm64/v8", "arm64"), ("linux/amd64", "amd64"),
    ):  # fmt: skip
        dest = f"{registry.host}/{unique()}:v1"
        result = run_kiln(
            "build", "-t", dest, "--insecure-registry", registry.host,
            "--custom-platform", platform, str(context),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        config = json.loads(subprocess.run(
            ["skopeo", "inspect", "--config", "--raw", "--tls-verify=false", f"docker://{dest}"],
            check=True, capture_output=True,
        ).stdout)  # fmt: skip
        assert f"MARKER={marker}" in config["config"]["Env"]
    missing = run_kiln("build", "--no-push", "--platform", "linux/s390x", str(context),
                       "--insecure-registry", registry.host)  # fmt: skip
    assert missing.returncode == 1
    assert "linux/amd64, linux/arm64, linux/arm/v7" in missing.stderr
