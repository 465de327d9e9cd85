"""A lying server (``HttpServer`` answering from a table): corrupt data never passes as good.

Why a real socket: the verification happens while streaming from a real HTTP connection,
through the same transport stack used against real registries.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from kiln.errors import DigestMismatchError, RegistryError
from kiln.registry import RegistryClient, pull_image
from tests.support.http_server import HttpServer, routes

GOOD = b"the real layer content" * 100
GOOD_DIGEST = "sha256:" + hashlib.sha256(GOOD).hexdigest()
OCI = "application/vnd.oci.image.manifest.v1+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"


@dataclass
class Routes:
    """path -> (status, headers, body) served by the fake registry."""

    table: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)


@pytest.fixture
def fake_registry() -> Iterator[tuple[str, Routes]]:
    table = Routes({"/v2/": (200, {}, b"{}")})
    with HttpServer(routes(table.table)) as server:
        yield server.host, table


def test_corrupted_blob_raises_digest_mismatch(fake_registry: tuple[str, Routes]) -> None:
    host, routes = fake_registry
    routes.table[f"/v2/app/blobs/{GOOD_DIGEST}"] = (200, {}, GOOD[:-1] + b"X")
    with (
        RegistryClient(host, insecure=True) as client,
        pytest.raises(DigestMismatchError, match="expected " + GOOD_DIGEST),
    ):
        client.fetch_blob("app", GOOD_DIGEST, io.BytesIO())


def test_good_blob_via_redirect(fake_registry: tuple[str, Routes]) -> None:
    host, routes = fake_registry
    routes.table[f"/v2/app/blobs/{GOOD_DIGEST}"] = (307, {"Location": "/storage/x"}, b"")
    routes.table["/storage/x"] = (200, {}, GOOD)
    out = io.BytesIO()
    with RegistryClient(host, insecure=True) as client:
        assert client.fetch_blob("app", GOOD_DIGEST, out) == len(GOOD)
    assert out.getvalue() == GOOD


def test_manifest_not_matching_requested_digest(fake_registry: tuple[str, Routes]) -> None:
    host, routes = fake_registry
    wanted = "sha256:" + hashlib.sha256(b'{"schemaVersion": 2}').hexdigest()
    routes.table[f"/v2/app/manifests/{wanted}"] = (
        200,
        {"Content-Type": OCI},
        b'{"schemaVersion": 2, "evil": 1}',
    )
    with RegistryClient(host, insecure=True) as client, pytest.raises(DigestMismatchError):
        client.get_manifest("app", wanted, [OCI])


def test_manifest_not_matching_content_digest_header(fake_registry: tuple[str, Routes]) -> None:
    host, routes = fake_registry
    header = "sha256:" + "2" * 64
    routes.table["/v2/app/manifests/v1"] = (
        200,
        {"Content-Type": OCI, "Docker-Content-Digest": header},
        b'{"schemaVersion": 2}',
    )
    with (
        RegistryClient(host, insecure=True) as client,
        pytest.raises(DigestMismatchError, match=header),
    ):
        client.get_manifest("app", "v1", [OCI])


def test_schema1_rejected_with_clear_error(fake_registry: tuple[str, Routes]) -> None:
    host, routes = fake_registry
    body = json.dumps({"schemaVersion": 1, "name": "app", "fsLayers": []}).encode()
    routes.table["/v2/app/manifests/old"] = (200, {"Content-Type": SCHEMA1}, body)
    # Some registries label schema 1 as plain JSON: recognised from the document itself.
    routes.table["/v2/app/manifests/plain"] = (200, {"Content-Type": "application/json"}, body)
    with RegistryClient(host, insecure=True) as client:
        for tag in ("old", "plain"):
            with pytest.raises(RegistryError, match="schema 1 manifests are not supported"):
                pull_image(client, "app", tag)


def test_config_blob_corruption_detected_by_pull(fake_registry: tuple[str, Routes]) -> None:
    host, routes = fake_registry
    config = b'{"os": "linux", "architecture": "amd64"}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "config": {"mediaType": "x", "digest": config_digest, "size": len(config)},
            "layers": [],
        }
    ).encode()
    routes.table["/v2/app/manifests/v1"] = (200, {"Content-Type": OCI}, manifest)
    routes.table[f"/v2/app/blobs/{config_digest}"] = (200, {}, config.replace(b"linux", b"linuX"))
    with RegistryClient(host, insecure=True) as client, pytest.raises(DigestMismatchError):
        pull_image(client, "app", "v1")
