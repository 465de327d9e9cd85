"""Redirects from a registry (to blob storage elsewhere, or on the registry itself), against
real servers on loopback: the credentials go to the registry and never to another host.

Why real servers: redirects are followed by the HTTP session (``kiln.net``), under the auth
layer that attaches the credentials; only real requests show which headers each host got.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Iterator

import pytest

from kiln.registry import Credentials, RegistryClient
from tests.support.http_server import Exchange, HttpServer, routes

BLOB = b"layer bytes" * 100
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
BASIC = "Basic " + base64.b64encode(b"alice:pw").decode()


@pytest.fixture
def storage() -> Iterator[HttpServer]:
    with HttpServer(routes({"/bucket/blob?sig=1": (200, {}, BLOB)})) as server:
        yield server


def _registry(storage_url: str) -> HttpServer:
    """A registry asking for basic auth that sends blob downloads to ``storage_url``."""

    def answer(exchange: Exchange) -> None:
        if exchange.headers.get("Authorization") != BASIC:
            exchange.reply(401, b"", {"WWW-Authenticate": 'Basic realm="test"'})
        elif exchange.route == f"/v2/app/blobs/{DIGEST}":
            exchange.reply(307, b"", {"Location": storage_url})
        elif exchange.route == f"/v2/same/blobs/{DIGEST}":
            exchange.reply(302, b"", {"Location": "/v2/elsewhere"})
        elif exchange.route in ("/v2/", "/v2/elsewhere"):
            exchange.reply(200, BLOB if exchange.route != "/v2/" else b"{}")

    return HttpServer(answer)


def test_credentials_are_not_sent_to_the_storage_a_registry_redirects_to(
    storage: HttpServer,
) -> None:
    other_host = storage.url.replace("127.0.0.1", "localhost") + "/bucket/blob?sig=1"
    with (
        _registry(other_host) as registry,
        RegistryClient(
            registry.host, insecure=True, credentials=Credentials("alice", "pw")
        ) as client,
    ):
        out = io.BytesIO()
        assert client.fetch_blob("app", DIGEST, out) == len(BLOB)
    assert out.getvalue() == BLOB
    blob_request = [seen for seen in registry.seen if "/blobs/" in seen.path][-1]
    assert blob_request.headers["Authorization"] == BASIC
    assert [seen.path for seen in storage.seen] == ["/bucket/blob?sig=1"]
    assert "Authorization" not in storage.seen[0].headers


def test_a_redirect_on_the_registry_itself_keeps_the_credentials(storage: HttpServer) -> None:
    with (
        _registry(storage.url) as registry,
        RegistryClient(
            registry.host, insecure=True, credentials=Credentials("alice", "pw")
        ) as client,
    ):
        client.fetch_blob("same", DIGEST, io.BytesIO())
    elsewhere = [seen for seen in registry.seen if seen.path == "/v2/elsewhere"]
    assert elsewhere and elsewhere[0].headers["Authorization"] == BASIC
    assert not storage.seen
