"""A real registry behind a proxy: mutual TLS through a ``CONNECT`` tunnel from ``HTTPS_PROXY``,
and ``NO_PROXY`` going direct, with kiln's HTTP session (``kiln.net``); a registry on
loopback is reached directly even with a dead proxy in the environment (Go's rule)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from kiln.errors import RegistryError
from kiln.registry import RegistryClient
from tests.registry.images import OCI_MANIFEST, make_image, push_image, sha256
from tests.registry_e2e.conftest import unique, write_context
from tests.support.connect_proxy import PROXIED_NAME, ConnectProxy
from tests.support.local_dns import LocalDNS
from tests.support.registry_server import RegistryServer, free_port
from tests.support.tools import run_kiln, skopeo_inspect

pytestmark = pytest.mark.registry


def test_mtls_push_and_pull_through_a_connect_proxy(
    mtls_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch, local_dns: LocalDNS
) -> None:
    image = make_image("proxied")
    repo = unique("proxied")
    host = f"{PROXIED_NAME}:{mtls_registry.port}"  # only the proxy can resolve this name
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://kiln:pw@127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with RegistryClient(
            host,
            ca_file=mtls_registry.ca_path,
            client_cert=mtls_registry.client_cert,
        ) as client:
            assert push_image(client, repo, "v1", image) == image.digest
            assert client.get_manifest(repo, "v1", [OCI_MANIFEST])[0] == image.manifest
            layer = io.BytesIO()
            client.fetch_blob(repo, sha256(image.layers[0]), layer)
            assert layer.getvalue() == image.layers[0]
        tunnels = list(proxy.log.lines)
        assert tunnels and all(line.startswith(f"CONNECT {host} HTTP/1.") for line in tunnels)
        assert len(tunnels) <= 4  # connections are reused, not one tunnel per request
        assert set(proxy.log.authorizations) == {"Basic a2lsbjpwdw=="}  # kiln:pw

        monkeypatch.setenv("NO_PROXY", ".kiln.invalid")
        assert mtls_registry.ca_path is not None and mtls_registry.client_cert is not None
        cert, key = (str(path) for path in mtls_registry.client_cert)
        message = local_dns.call(_manifest_error, host, repo, str(mtls_registry.ca_path), cert, key)
        assert f"cannot resolve {PROXIED_NAME}" in message
        assert proxy.log.lines == tunnels  # went direct (where the name does not resolve)
    assert PROXIED_NAME in local_dns.queries


def _manifest_error(host: str, repo: str, ca: str, cert: str, key: str) -> str:
    """Run by ``LocalDNS.call`` in a child: the error getting ``repo:v1`` from ``host``."""
    with (
        RegistryClient(
            host, ca_file=Path(ca), client_cert=(Path(cert), Path(key)), retries=0
        ) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.get_manifest(repo, "v1", [OCI_MANIFEST])
    return str(caught.value)


def test_build_against_loopback_ignores_a_dead_proxy(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: any proxied request fails
    env = {name: dead for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy")}
    env.update(NO_PROXY="", no_proxy="")
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\n", {"a": "a"})
    for host in (registry.host, f"localhost:{registry.port}"):
        dest = f"{host}/{unique('loopback')}:v1"
        flags = ("--insecure-registry", registry.host, "--insecure-registry", host)
        result = run_kiln("build", "-t", dest, *flags, str(context), env=env)
        assert result.returncode == 0, result.stderr
        assert skopeo_inspect(dest)["Digest"]  # it really is in the registry
