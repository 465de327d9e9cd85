"""The push asks the registry about each blob once: what the pre-upload sent is not checked again.

Why a test of its own: the request count is the push's cost on a fast registry, and "known
present" must only ever mean that the registry said so. Requests are counted by a fault-free
``FaultProxy`` in front of a real registry, which then holds the image.
"""

from __future__ import annotations

import io
from typing import BinaryIO

import pytest

from kiln.builder.options import RegistryOptions
from kiln.builder.publish import publish
from kiln.builder.registries import RegistryPool
from kiln.image import BlobLayer, Descriptor, Image, build_manifest, digest_of, mediatypes
from kiln.registry import Reference, RegistryClient
from tests.support.fault_proxy import FaultProxy
from tests.support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

CONFIG = b'{"architecture":"amd64","os":"linux"}'


class _Blobs(dict[str, bytes]):
    """A ``BlobReader`` over a dict of the test's blobs."""

    def open(self, digest: str) -> BinaryIO:
        return io.BytesIO(self[digest])


BLOBS = _Blobs()


def _layer(data: bytes) -> BlobLayer:
    digest = digest_of(data)
    BLOBS[digest] = data
    return BlobLayer(digest, digest, len(data), mediatypes.DOCKER_LAYER_GZIP, BLOBS)


def _image(layers: list[BlobLayer]) -> Image:
    config = Descriptor(mediatypes.DOCKER_CONFIG, digest_of(CONFIG), len(CONFIG))
    descriptors = [Descriptor(b.media_type, b.digest, b.size) for b in layers]
    manifest = build_manifest(config, descriptors, "docker")
    return Image(manifest, mediatypes.DOCKER_MANIFEST, CONFIG, tuple(layers))


def test_blobs_confirmed_earlier_are_not_asked_about_again(registry: RegistryServer) -> None:
    sent, shared, fresh = _layer(b"pre-uploaded" * 100), _layer(b"shared" * 100), _layer(b"new")
    RegistryClient(registry.host, insecure=True).upload_blob(
        "pub/app", shared.digest, shared.size, shared.open_compressed
    )  # already in the registry, unknown to the pushing client
    with FaultProxy(registry.host) as proxy:
        pool = RegistryPool(RegistryOptions(insecure_registries=(proxy.host,)))
        try:
            client = pool.client(proxy.host, push=True)
            # a pre-upload
            client.upload_blob("pub/app", sent.digest, sent.size, sent.open_compressed)
            assert client.confirmed("pub/app", sent.digest)
            assert not client.confirmed("pub/app", shared.digest)
            assert not client.confirmed("other/app", sent.digest)
            before = len(proxy.seen)
            image = _image([sent, shared, fresh])
            pinned = publish(image, Reference.parse(f"{proxy.host}/pub/app:1"), pool)
            asked = [(s.method, s.path) for s in proxy.seen[before:]]
        finally:
            pool.close()

    def about(digest: str) -> list[str]:  # the digest is in the path, or the PUT's query
        return [method for method, path in asked if digest[7:] in path]

    assert about(sent.digest) == []  # confirmed by its upload
    assert about(shared.digest) == ["HEAD"]  # found
    for digest in (fresh.digest, image.config_digest):  # missing: HEAD, then the upload
        assert about(digest) == ["HEAD", "PUT"]  # whose answer confirms it
    assert asked[-1] == ("PUT", "/v2/pub/app/manifests/1")
    reader = RegistryClient(registry.host, insecure=True)
    _, _, digest = reader.get_manifest("pub/app", "1", [mediatypes.DOCKER_MANIFEST])
    assert digest == pinned.digest
    for digest in (sent.digest, shared.digest, fresh.digest, image.config_digest):
        assert reader.blob_exists("pub/app", digest)
