"""The push asks the registry about each blob once: what the pre-upload sent is not checked again.

Why a test of its own: the request count is the push's cost on a fast registry, and "known
present" must only ever mean that the registry said so. Requests are counted by a fault-free
``FaultProxy`` in front of a real registry, which then holds the image.
"""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from kiln.builder.options import RegistryOptions
from kiln.builder.publish import Blob, Publication, config_blob, publish
from kiln.builder.registries import RegistryPool
from kiln.image import mediatypes
from kiln.registry import RegistryClient
from tests.support.fault_proxy import FaultProxy
from tests.support.registry_server import RegistryServer

pytestmark = pytest.mark.registry


def _blob(data: bytes) -> Blob:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Blob(digest, len(data), mediatypes.DOCKER_LAYER_GZIP, lambda: io.BytesIO(data))


def _publication(layers: list[Blob], config: Blob) -> Publication:
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.DOCKER_MANIFEST,
            "config": {
                "mediaType": config.media_type,
                "digest": config.digest,
                "size": config.size,
            },
            "layers": [
                {"mediaType": b.media_type, "digest": b.digest, "size": b.size} for b in layers
            ],
        }
    ).encode()
    digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    return Publication((*layers, config), manifest, mediatypes.DOCKER_MANIFEST, digest)


def test_blobs_confirmed_earlier_are_not_asked_about_again(registry: RegistryServer) -> None:
    sent, shared, fresh = _blob(b"pre-uploaded" * 100), _blob(b"shared" * 100), _blob(b"new")
    config = config_blob(b'{"architecture":"amd64","os":"linux"}')
    RegistryClient(registry.host, insecure=True).upload_blob(
        "pub/app", shared.digest, shared.size, shared.opener
    )  # already in the registry, unknown to the pushing client
    with FaultProxy(registry.host) as proxy:
        pool = RegistryPool(RegistryOptions(insecure_registries=(proxy.host,)))
        try:
            client = pool.client(proxy.host, push=True)
            client.upload_blob("pub/app", sent.digest, sent.size, sent.opener)  # a pre-upload
            assert client.confirmed("pub/app", sent.digest)
            assert not client.confirmed("pub/app", shared.digest)
            assert not client.confirmed("other/app", sent.digest)
            before = len(proxy.seen)
            item = _publication([sent, shared, fresh], config)
            pinned = publish(item, f"{proxy.host}/pub/app:1", pool)
            asked = [(s.method, s.path) for s in proxy.seen[before:]]
        finally:
            pool.close()

    def about(blob: Blob) -> list[str]:  # the digest is in the path, or the PUT's query
        return [method for method, path in asked if blob.digest[7:] in path]

    assert about(sent) == []  # confirmed by its upload
    assert about(shared) == ["HEAD"]  # found
    for blob in (fresh, config):  # missing: HEAD, then the upload, whose answer confirms it
        assert about(blob) == ["HEAD", "PUT"]
    assert asked[-1] == ("PUT", "/v2/pub/app/manifests/1")
    reader = RegistryClient(registry.host, insecure=True)
    _, _, digest = reader.get_manifest("pub/app", "1", [mediatypes.DOCKER_MANIFEST])
    assert digest == pinned.digest
    for blob in (sent, shared, fresh, config):
        assert reader.blob_exists("pub/app", blob.digest)
