"""TLS end to end: a CA made with openssl, mutual TLS, and plain HTTP only when marked."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kiln.cli.hints import render_for_cli
from kiln.errors import RegistryError
from kiln.registry import RegistryClient
from tests.registry.images import make_image, push_image, sha256
from tests.registry_e2e.conftest import raw_digest, skopeo_copy, unique, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry


def tls_flags(server: RegistryServer) -> list[str]:
    assert server.ca_path is not None and server.client_cert is not None
    cert, key = server.client_cert
    return [
        "--registry-certificate",
        f"{server.host}={server.ca_path}",
        "--registry-client-cert",
        f"{server.host}={cert},{key}",
    ]


def test_mtls_needs_the_client_certificate(mtls_registry: RegistryServer) -> None:
    assert mtls_registry.client_cert is not None
    with (
        RegistryClient(mtls_registry.host, ca_file=mtls_registry.ca_path) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.blob_exists("x/y", sha256(b""))
    # The library names the option; the CLI spells it as a flag (kiln.cli.hints).
    assert "registry_client_certs=" in str(caught.value)
    assert "--registry-client-cert" in render_for_cli(caught.value)
    with RegistryClient(
        mtls_registry.host, ca_file=mtls_registry.ca_path, client_cert=mtls_registry.client_cert
    ) as client:
        assert push_image(client, unique(), "v1", make_image("mtls")) == make_image("mtls").digest


def test_untrusted_certificate_error_names_the_flags(mtls_registry: RegistryServer) -> None:
    with (
        RegistryClient(mtls_registry.host, client_cert=mtls_registry.client_cert) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.blob_exists("x/y", sha256(b""))
    text = render_for_cli(caught.value)
    assert (
        "could not be verified" in text and f"--registry-certificate {mtls_registry.host}=" in text
    )
    assert f"registry_certificates={{'{mtls_registry.host}'" in str(caught.value)


def test_build_pulls_and_pushes_over_mtls(
    mtls_registry: RegistryServer, skopeo_cert_dir: Path, busybox_layout: Path, tmp_path: Path
) -> None:
    base = f"{mtls_registry.host}/{unique('base')}:latest"
    skopeo_copy(
        f"oci:{busybox_layout}:latest", f"docker://{base}", "--dest-cert-dir", str(skopeo_cert_dir)
    )
    context = write_context(
        tmp_path / "ctx", f"FROM {base}\nCOPY note.txt /note.txt\n", {"note.txt": "over mTLS\n"}
    )
    dest = f"{mtls_registry.host}/{unique()}:v1"
    result = run_kiln("build", "-t", dest, *tls_flags(mtls_registry), str(context))
    assert result.returncode == 0, result.stderr
    digest = result.stdout.split()[-1]
    # An independent client with its own TLS set-up sees the pushed image.
    assert raw_digest(dest, "--cert-dir", str(skopeo_cert_dir)) == digest


def test_plain_http_registry_needs_to_be_marked_insecure(
    registry: RegistryServer, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    dest = f"{registry.host}/{unique()}:v1"
    result = run_kiln("build", "-t", dest, "--image-download-retry", "0", str(context))
    assert result.returncode != 0
    assert "plain HTTP" in result.stderr
    assert f"--insecure-registry {registry.host}" in result.stderr
    assert "Traceback" not in result.stderr


def test_https_registry_marked_insecure_is_a_clear_error(mtls_registry: RegistryServer) -> None:
    with (
        RegistryClient(mtls_registry.host, insecure=True, retries=0) as client,
        pytest.raises(RegistryError, match="speaks HTTPS"),
    ):
        client.blob_exists("x/y", sha256(b""))


def test_skip_tls_verify_registry_flag(mtls_registry: RegistryServer, tmp_path: Path) -> None:
    assert mtls_registry.client_cert is not None
    cert, key = mtls_registry.client_cert
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    dest = f"{mtls_registry.host}/{unique()}:v1"
    common = ["build", "-t", dest, "--registry-client-cert", f"{mtls_registry.host}={cert},{key}"]
    refused = run_kiln(*common, str(context))
    assert refused.returncode != 0 and "could not be verified" in refused.stderr
    accepted = run_kiln(*common, "--skip-tls-verify-registry", mtls_registry.host, str(context))
    assert accepted.returncode == 0, accepted.stderr


def test_chunked_upload_over_tls(mtls_registry: RegistryServer) -> None:
    blob = bytes(range(256)) * 4096  # 1 MiB in 64 KiB chunks
    repo = unique()
    with RegistryClient(
        mtls_registry.host,
        ca_file=mtls_registry.ca_path,
        client_cert=mtls_registry.client_cert,
        chunk_size=64 * 1024,
    ) as client:
        client.upload_blob(repo, sha256(blob), len(blob), lambda: io.BytesIO(blob))
        out = io.BytesIO()
        client.fetch_blob(repo, sha256(blob), out)
    assert out.getvalue() == blob
