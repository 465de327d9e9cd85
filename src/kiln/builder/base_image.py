"""Fetching a FROM image: manifest, config and layer blobs into the local blob store.

Why in build: it wires the registry (which knows nothing of disks) to the blob store (which knows
nothing of registries). Everything pulled is kept content-addressed in the store: layers, the
config and the manifests (index included). Blobs already there are never downloaded again, and a
digest-pinned manifest found there needs no request, so a `--cache-dir` that outlives the build
(or one filled by `kiln warm`) is a base-image cache. Mirrors are tried before the origin. The
image must provide the requested platform: an index is searched for it, a single-platform image
must be for it (its config says so). A build pulls lazily (``lazy``): the manifests and the
config now, each layer when a stage's files are first needed (``remote_layer``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from kiln.builder.cancel import in_this_build
from kiln.builder.registries import TRANSFER_THREADS, RegistryPool
from kiln.builder.remote_layer import RemoteLayer
from kiln.errors import DigestMismatchError, LayerError, RegistryError
from kiln.fs import BlobStore, StoredLayer
from kiln.image import ImageConfig, Layer, Platform
from kiln.registry import (
    Reference,
    RegistryClient,
    ResolvedImage,
    check_platform,
    resolve_image,
)

log = logging.getLogger("kiln")


def fetch_base_image(
    ref: Reference,
    pool: RegistryPool,
    store: BlobStore,
    platform: Platform,
    *,
    lazy: bool = False,
) -> tuple[ImageConfig, tuple[Layer, ...]]:
    """Pull image ``ref`` for platform; return its config and layers (blobs now in store).

    ``lazy``: only the manifests and the config are pulled; the layers are ``RemoteLayer``s,
    downloaded when a step needs the files (a build whose steps all hit the cache never does).
    """
    sources = pool.pull_sources(ref)
    for number, source in enumerate(sources, start=1):
        try:
            return _fetch_from(source, pool, store, platform, lazy)
        except (RegistryError, DigestMismatchError) as exc:
            if number == len(sources):
                raise
            log.warning("Could not pull %s from %s (%s); trying the next source", ref, source, exc)
    raise AssertionError("pull_sources never returns an empty list")


def _fetch_from(
    ref: Reference, pool: RegistryPool, store: BlobStore, platform: Platform, lazy: bool
) -> tuple[ImageConfig, tuple[Layer, ...]]:
    client = pool.client(ref.registry, push=False)
    log.info("Retrieving image manifest %s", ref)
    resolved = resolve_image(client, ref.repository, ref.reference, platform, _cached(store))
    for digest, data in resolved.manifests:
        _keep(store, digest, data)
    config = ImageConfig.from_json(_config_bytes(client, ref, resolved, store))
    if resolved.index_digest is None:  # nothing was chosen by platform: the config must fit
        check_platform(config.platform, platform, str(ref))
    diff_ids = config.diff_ids
    if len(diff_ids) != len(resolved.layers):
        raise LayerError(
            f"{ref}: manifest lists {len(resolved.layers)} layers "
            f"but its config has {len(diff_ids)} diff_ids"
        )
    if lazy:
        return config, tuple(
            RemoteLayer(
                layer.digest,
                diff_id,
                layer.size,
                layer.media_type,
                ref.registry,
                ref.repository,
                pool,
                store,
            )
            for layer, diff_id in zip(resolved.layers, diff_ids, strict=True)
        )
    missing = sorted({layer.digest for layer in resolved.layers if not store.has(layer.digest)})
    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as threads:
        download = in_this_build(lambda d: _download(client, ref.repository, d, store))
        for done in threads.map(download, missing):
            log.debug("Pulled layer %s", done)
    return config, tuple(
        StoredLayer(layer.digest, diff_id, layer.size, layer.media_type, store)
        for layer, diff_id in zip(resolved.layers, diff_ids, strict=True)
    )


def _cached(store: BlobStore) -> Callable[[str], bytes | None]:
    def lookup(digest: str) -> bytes | None:
        if not store.has(digest):
            return None
        with store.open(digest) as stream:
            return stream.read()

    return lookup


def _keep(store: BlobStore, digest: str, data: bytes) -> None:
    if store.has(digest):
        return
    with store.writer(expected_digest=digest) as writer:
        writer.write(data)


def _config_bytes(
    client: RegistryClient, ref: Reference, resolved: ResolvedImage, store: BlobStore
) -> bytes:
    digest = resolved.config_digest
    if not store.has(digest):
        _download(client, ref.repository, digest, store)
    with store.open(digest) as stream:
        return stream.read()


def _download(client: RegistryClient, repository: str, digest: str, store: BlobStore) -> str:
    """Stream a blob into a file next to the store (verified by the client), then publish it."""
    log.info("Pulling blob %s", digest)
    # Unique per process and thread: builds sharing a --cache-dir may fetch the same blob.
    tmp = store.root / f".download-{os.getpid()}-{threading.get_ident()}-{digest.split(':')[-1]}"
    try:
        with tmp.open("wb") as out:
            client.fetch_blob(repository, digest, out)
        store.add_file(tmp, digest)
    finally:
        tmp.unlink(missing_ok=True)
    return digest
