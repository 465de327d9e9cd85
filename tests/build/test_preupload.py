"""Pre-upload against a real registry: watched stages' layers go up early, failures stay quiet.

The final push (``publish``) is unchanged and tested with every build; these tests check what
happens before it: which layers are sent, that they really arrive, and that a registry that
cannot be reached makes ``wait`` return (the push then reports the error) instead of raising.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from kiln.build.options import RegistryOptions
from kiln.build.preupload import Preuploads, from_chain
from kiln.build.registries import RegistryPool
from kiln.build.state import LayerRef
from kiln.dockerfile import parse
from kiln.fs import BlobStore
from kiln.image import mediatypes
from kiln.registry import RegistryClient
from tests.support.registry_server import RegistryServer, free_port


def test_from_chain_follows_from_but_not_copy_from() -> None:
    dockerfile = parse(
        "FROM busybox AS base\nRUN true\n"
        "FROM base AS middle\nRUN true\n"
        "FROM alpine AS tools\nRUN true\n"
        "FROM ${BASE} AS final\nCOPY --from=tools /x /x\n"
    )
    final = dockerfile.stages[3]
    assert from_chain(dockerfile, final, {"BASE": "middle"}) == frozenset({0, 1, 3})
    assert from_chain(dockerfile, final, {"BASE": "scratch"}) == frozenset({3})
    assert from_chain(dockerfile, dockerfile.stages[2], {}) == frozenset({2})


def _layer(store: BlobStore, tmp_path: Path, size: int) -> LayerRef:
    data = os.urandom(size)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = tmp_path / digest[7:19]
    path.write_bytes(data)
    store.add_file(path, digest)
    return LayerRef(digest, digest, size, mediatypes.DOCKER_LAYER_GZIP)


@pytest.mark.registry
def test_watched_layers_arrive_in_every_destination(
    registry: RegistryServer, tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "store")
    pool = RegistryPool(RegistryOptions(insecure_registries=(registry.host,)))
    destinations = [f"{registry.host}/pre/one:1", f"{registry.host}/pre/two:1"]
    uploads = Preuploads(destinations, pool, store, threads=2)
    try:
        uploads.watch(frozenset({1}))
        base, built = _layer(store, tmp_path, 1000), _layer(store, tmp_path, 3 << 20)
        other = _layer(store, tmp_path, 2000)
        uploads.offer(1, [base])
        uploads.offer(1, [base, built])  # offered again: uploaded once
        uploads.offer(0, [other])  # a stage the image does not derive from
        uploads.wait()
        uploads.close()
        late = _layer(store, tmp_path, 500)
        uploads.offer(1, [late])  # after close: dropped
        uploads.wait()
    finally:
        uploads.close()
        pool.close()
    client = RegistryClient(registry.host, insecure=True)
    for repo in ("pre/one", "pre/two"):
        assert client.blob_exists(repo, base.digest)
        assert client.blob_exists(repo, built.digest)
        assert not client.blob_exists(repo, other.digest)
        assert not client.blob_exists(repo, late.digest)


@pytest.mark.registry
def test_an_unreachable_registry_only_delays_the_error_to_the_push(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    pool = RegistryPool(RegistryOptions(insecure_registries=(host,), push_retry=0))
    uploads = Preuploads([f"{host}/pre/app:1"], pool, store)
    try:
        uploads.watch(frozenset({0}))
        uploads.offer(0, [_layer(store, tmp_path, 100)])
        uploads.wait()  # returns: the failure is the push's to report
    finally:
        uploads.close()
        pool.close()
