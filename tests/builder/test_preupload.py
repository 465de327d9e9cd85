"""Pre-upload against a real registry: watched stages' layers go up early, failures stay quiet.

The final push (``publish``) is unchanged and tested with every build; these tests check what
happens before it: which layers are sent, that they really arrive, that a large layer goes up
while it is written (and only then), and that a registry that cannot be reached makes ``wait``
return (the push then reports the error) instead of raising.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from kiln.builder.options import RegistryOptions, parse_references
from kiln.builder.preupload import Preuploads, from_chain
from kiln.builder.registries import RegistryPool
from kiln.dockerfile import parse
from kiln.errors import UnsafePathError
from kiln.fs import BlobStore, Changes, StoredLayer, write_layer
from kiln.image import digest_of, mediatypes
from kiln.registry import RegistryClient
from tests.support.fault_proxy import FaultProxy
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


def _layer(store: BlobStore, tmp_path: Path, size: int) -> StoredLayer:
    data = os.urandom(size)
    digest = digest_of(data)
    path = tmp_path / digest[7:19]
    path.write_bytes(data)
    store.add_file(path, digest)
    return StoredLayer(digest, digest, size, mediatypes.DOCKER_LAYER_GZIP, store)


@pytest.mark.registry
def test_watched_layers_arrive_in_every_destination(
    registry: RegistryServer, tmp_path: Path
) -> None:
    store = BlobStore(tmp_path / "store")
    pool = RegistryPool(RegistryOptions(insecure_registries=(registry.host,)))
    destinations = [f"{registry.host}/pre/one:1", f"{registry.host}/pre/two:1"]
    uploads = Preuploads(parse_references(destinations), pool, threads=2)
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
def test_an_unreachable_registry_only_delays_the_error_to_the_push(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The upload is tried, fails, and ``wait`` returns anyway (a no-op ``Preuploads`` would
    pass the last part alone: the log line says the upload was really attempted)."""
    store = BlobStore(tmp_path / "store")
    host = f"127.0.0.1:{free_port()}"  # nothing listens there
    pool = RegistryPool(RegistryOptions(insecure_registries=(host,), push_retry=0))
    uploads = Preuploads(parse_references([f"{host}/pre/app:1"]), pool)
    layer = _layer(store, tmp_path, 100)
    try:
        uploads.watch(frozenset({0}))
        with caplog.at_level(logging.DEBUG, logger="kiln"):
            uploads.offer(0, [layer])
            uploads.wait()  # returns: the failure is the push's to report
    finally:
        uploads.close()
        pool.close()
    failed = f"Pre-upload of {layer.digest} to {host}/pre/app failed (push retries)"
    assert [r.message for r in caplog.records if r.message.startswith(failed)], caplog.text


def _written(
    uploads: Preuploads, stage: int, root: Path, name: str, store: BlobStore
) -> StoredLayer:
    out = store.root.parent / f"{name}.layer"
    info = write_layer(root, Changes((name,)), out, growing=uploads.follow(stage))
    store.add_file(out, info.digest)
    return StoredLayer(info.digest, info.diff_id, info.size, mediatypes.DOCKER_LAYER_GZIP, store)


@pytest.mark.registry
def test_large_layers_go_up_while_they_are_written(
    registry: RegistryServer, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big").write_bytes(os.urandom(3 << 20))
    (root / "small").write_bytes(os.urandom(1000))
    store = BlobStore(tmp_path / "store")
    with FaultProxy(registry.host) as proxy:
        pool = RegistryPool(RegistryOptions(insecure_registries=(proxy.host,)))
        destinations = [f"{proxy.host}/pre/streamed:1", f"{proxy.host}/pre/streamed-too:1"]
        uploads = Preuploads(parse_references(destinations), pool, stream_after=1 << 20)
        try:
            uploads.watch(frozenset({0}))
            assert uploads.follow(1) is None  # a stage the image does not derive from
            big = _written(uploads, 0, root, "big", store)
            small = _written(uploads, 0, root, "small", store)
            with pytest.raises(UnsafePathError):  # a layer that fails: its followers give up
                os.symlink(str(tmp_path), root / "evil")
                write_layer(root, Changes(("evil/x",)), tmp_path / "x", growing=uploads.follow(0))
            uploads.offer(0, [big, small])  # as the builder does once a layer is stored
            uploads.wait()
        finally:
            uploads.close()
            pool.close()
        client = RegistryClient(registry.host, insecure=True)
        for repo in ("pre/streamed", "pre/streamed-too"):
            assert client.blob_exists(repo, big.digest)
            assert client.blob_exists(repo, small.digest)
        assert big.size > 1 << 20 > small.size
        assert proxy.count("PATCH", "/blobs/uploads/") == 2  # the big layer, streamed to each
        assert proxy.count("HEAD", big.digest) == 0  # and never offered again
        assert proxy.count("HEAD", small.digest) == 2  # the small one: offered, HEAD first
        assert proxy.count("POST", "/blobs/uploads/") == 4
