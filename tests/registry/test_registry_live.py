"""Against the real ``docker-registry``: push, pull, auth, TLS, HEAD skip, platform indexes."""

from __future__ import annotations

import io
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from kiln.cli.hints import render_for_cli
from kiln.errors import AuthError, RegistryError, UsageError
from kiln.image import Platform
from kiln.registry import Reference, RegistryClient, load_credentials, pull_image
from tests.conftest import DockerConfigFactory
from tests.registry.images import (
    OCI_INDEX,
    OCI_MANIFEST,
    index_of,
    make_image,
    push_image,
    sha256,
)
from tests.support.registry_server import RegistryServer

pytestmark = pytest.mark.registry


def unique_repo(prefix: str = "kiln/test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def skopeo_inspect(ref: str, *extra: str) -> dict[str, Any]:
    result = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *extra, f"docker://{ref}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_push_then_pull_roundtrip(registry: RegistryServer) -> None:
    repo = unique_repo()
    image = make_image("roundtrip")
    with RegistryClient(registry.host, insecure=True) as client:
        digest = push_image(client, repo, "v1", image)
        assert digest == image.digest
        pulled = pull_image(client, repo, "v1")
        layer = io.BytesIO()
        size = client.fetch_blob(repo, pulled.layers[0].digest, layer)
    assert pulled.manifest_bytes == image.manifest
    assert pulled.manifest_media_type == OCI_MANIFEST
    assert pulled.manifest_digest == image.digest
    assert pulled.config_bytes == image.config
    assert pulled.config_digest == sha256(image.config)
    assert [ref.digest for ref in pulled.layers] == [sha256(image.layers[0])]
    assert layer.getvalue() == image.layers[0]
    assert size == len(image.layers[0])
    # An independent tool sees the same image.
    inspected = skopeo_inspect(f"{registry.host}/{repo}:v1")
    assert inspected["Digest"] == image.digest
    assert inspected["Layers"] == [sha256(image.layers[0])]
    assert inspected["Env"] == ["MARKER=roundtrip"]


def test_pull_by_reference_and_digest(registry: RegistryServer) -> None:
    repo = unique_repo()
    image = make_image("bydigest")
    with RegistryClient(registry.host, insecure=True) as client:
        push_image(client, repo, "v1", image)
        by_tag = pull_image(client, Reference.parse(f"{registry.host}/{repo}:v1"))
        by_digest = pull_image(client, repo, image.digest)
    assert by_tag.manifest_digest == by_digest.manifest_digest == image.digest


def test_missing_manifest_is_registry_error(registry: RegistryServer) -> None:
    with (
        RegistryClient(registry.host, insecure=True) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.get_manifest(unique_repo(), "nope", [OCI_MANIFEST])
    assert caught.value.status == 404
    assert caught.value.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN")


def test_existing_blob_is_not_uploaded_again(registry: RegistryServer) -> None:
    repo = unique_repo()
    blob = b"already there" * 10
    opened: list[int] = []

    def opener() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(blob)

    with RegistryClient(registry.host, insecure=True) as client:
        assert not client.blob_exists(repo, sha256(blob))
        client.upload_blob(repo, sha256(blob), len(blob), opener)
        assert client.blob_exists(repo, sha256(blob))
        client.upload_blob(repo, sha256(blob), len(blob), opener)
    assert len(opened) == 1


def test_large_blob_streams_and_verifies(registry: RegistryServer, tmp_path: Path) -> None:
    repo = unique_repo()
    source = tmp_path / "big.bin"
    source.write_bytes(bytes(range(256)) * 12000)  # ~3 MB: above the in-memory threshold
    data = source.read_bytes()
    with RegistryClient(registry.host, insecure=True) as client:
        client.upload_blob(repo, sha256(data), len(data), lambda: source.open("rb"))
        out = tmp_path / "out.bin"
        with out.open("wb") as dest:
            assert client.fetch_blob(repo, sha256(data), dest) == len(data)
    assert out.read_bytes() == data


def test_wrong_digest_upload_rejected_by_registry(registry: RegistryServer) -> None:
    wrong = "sha256:" + "0" * 64
    with (
        RegistryClient(registry.host, insecure=True) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.upload_blob(unique_repo(), wrong, 3, lambda: io.BytesIO(b"abc"))
    assert caught.value.code == "DIGEST_INVALID"


def test_cross_repo_mount(registry: RegistryServer) -> None:
    source, target = unique_repo(), unique_repo()
    blob = b"mount me" * 50
    with RegistryClient(registry.host, insecure=True) as client:
        client.upload_blob(source, sha256(blob), len(blob), lambda: io.BytesIO(blob))

        def must_not_open() -> io.BytesIO:
            raise AssertionError("mounted blobs are not uploaded")

        client.upload_blob(target, sha256(blob), len(blob), must_not_open, mount_from=source)
        assert client.blob_exists(target, sha256(blob))


def test_platform_selection_from_index(registry: RegistryServer) -> None:
    repo = unique_repo()
    amd = make_image("amd", "amd64")
    arm = make_image("arm", "arm64", "v8")
    armv7 = make_image("armv7", "arm", "v7")
    with RegistryClient(registry.host, insecure=True) as client:
        for name, image in (("amd", amd), ("arm", arm), ("armv7", armv7)):
            push_image(client, repo, name, image)
        index = index_of(
            [
                (amd, {"os": "linux", "architecture": "amd64"}),
                (arm, {"os": "linux", "architecture": "arm64", "variant": "v8"}),
                (armv7, {"os": "linux", "architecture": "arm", "variant": "v7"}),
            ]
        )
        index_digest = client.put_manifest(repo, "multi", index, OCI_INDEX)
        got_amd = pull_image(client, repo, "multi")
        got_arm = pull_image(client, repo, "multi", Platform("linux", "arm64"))
        got_armv7 = pull_image(client, repo, "multi", Platform("linux", "arm", "v7"))
        with pytest.raises(RegistryError, match="no image for platform linux/s390x") as caught:
            pull_image(client, repo, "multi", Platform("linux", "s390x"))
    assert got_amd.manifest_digest == amd.digest
    assert got_amd.index_digest == index_digest == sha256(index)
    assert got_arm.manifest_digest == arm.digest
    assert got_armv7.manifest_digest == armv7.digest
    assert "linux/arm/v7" in str(caught.value)
    assert "choose one of the listed platforms with platform=..." in str(caught.value)
    assert "choose one of the listed platforms with --platform" in render_for_cli(caught.value)


# ------------------------------------------------------------------------------- auth


def test_auth_registry_rejects_anonymous(auth_registry: RegistryServer) -> None:
    with (
        RegistryClient(auth_registry.host, insecure=True) as client,
        pytest.raises(AuthError) as caught,
    ):
        client.get_manifest("any/repo", "v1", [OCI_MANIFEST])
    assert caught.value.status == 401


def test_auth_registry_rejects_wrong_password(
    auth_registry: RegistryServer, docker_config: DockerConfigFactory
) -> None:
    directory = docker_config(auth_registry.host, password="wrong-password")
    creds = load_credentials(auth_registry.host, directory)
    client = RegistryClient(auth_registry.host, insecure=True, credentials=creds)
    with client, pytest.raises(AuthError) as caught:
        client.blob_exists("any/repo", sha256(b""))
    assert caught.value.status == 401
    assert "wrong-password" not in str(caught.value)


def test_auth_registry_works_with_config_json(
    auth_registry: RegistryServer, docker_config: DockerConfigFactory
) -> None:
    assert auth_registry.htpasswd is not None
    user, password = auth_registry.htpasswd
    directory = docker_config(auth_registry.host, user, password)
    creds = load_credentials(auth_registry.host, directory)
    assert creds is not None
    repo = unique_repo()
    image = make_image("authed")
    with RegistryClient(auth_registry.host, insecure=True, credentials=creds) as client:
        push_image(client, repo, "v1", image)
        assert pull_image(client, repo, "v1").config_bytes == image.config
    inspected = skopeo_inspect(f"{auth_registry.host}/{repo}:v1", "--creds", f"{user}:{password}")
    assert inspected["Digest"] == image.digest


# -------------------------------------------------------------------------------- TLS


def test_tls_registry_with_ca_file(tls_registry: RegistryServer) -> None:
    repo = unique_repo()
    image = make_image("tls")
    with RegistryClient(tls_registry.host, ca_file=tls_registry.ca_path) as client:
        push_image(client, repo, "v1", image)
        assert pull_image(client, repo, "v1").manifest_digest == image.digest


def test_tls_registry_untrusted_fails_unless_skip_verify(tls_registry: RegistryServer) -> None:
    with (
        RegistryClient(tls_registry.host, retries=0) as client,
        pytest.raises(RegistryError, match="SSLError"),
    ):
        client.blob_exists("x/y", sha256(b""))
    with RegistryClient(tls_registry.host, skip_tls_verify=True) as client:
        assert not client.blob_exists("x/y", sha256(b""))


def test_pull_refuses_reference_for_another_registry(registry: RegistryServer) -> None:
    with (
        RegistryClient(registry.host, insecure=True) as client,
        pytest.raises(UsageError, match="this client talks to"),
    ):
        pull_image(client, Reference.parse("quay.io/org/app:v1"))
