"""A real registry behind a proxy: mutual TLS through a ``CONNECT`` tunnel from ``HTTPS_PROXY``,
and ``NO_PROXY`` going direct, with kiln's own HTTP client (``kiln.net``)."""

from __future__ import annotations

import io

import pytest

from kiln.registry import RegistryClient
from tests.registry.images import OCI_MANIFEST, make_image, push_image, sha256
from tests.registry_e2e.conftest import unique
from tests.support.connect_proxy import ConnectProxy
from tests.support.registry_server import RegistryServer

pytestmark = pytest.mark.registry


def test_mtls_push_and_pull_through_a_connect_proxy(
    mtls_registry: RegistryServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image("proxied")
    repo = unique("proxied")
    with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://kiln:pw@127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        with RegistryClient(
            mtls_registry.host,
            ca_file=mtls_registry.ca_path,
            client_cert=mtls_registry.client_cert,
        ) as client:
            assert push_image(client, repo, "v1", image) == image.digest
            assert client.get_manifest(repo, "v1", [OCI_MANIFEST])[0] == image.manifest
            layer = io.BytesIO()
            client.fetch_blob(repo, sha256(image.layers[0]), layer)
            assert layer.getvalue() == image.layers[0]
        tunnels = list(proxy.log.lines)
        assert tunnels and all(line == f"CONNECT {mtls_registry.host} HTTP/1.1" for line in tunnels)
        assert len(tunnels) <= 4  # connections are reused, not one tunnel per request
        assert set(proxy.log.authorizations) == {"Basic a2lsbjpwdw=="}  # kiln:pw

        monkeypatch.setenv("NO_PROXY", "127.0.0.0/8")
        with RegistryClient(
            mtls_registry.host,
            ca_file=mtls_registry.ca_path,
            client_cert=mtls_registry.client_cert,
        ) as client:
            assert client.get_manifest(repo, "v1", [OCI_MANIFEST])[0] == image.manifest
        assert proxy.log.lines == tunnels  # went direct
