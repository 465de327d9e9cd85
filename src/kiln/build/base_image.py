"""Fetching a FROM image: manifest, config and layer blobs into the local blob store.

Why in build: it wires the registry (which knows nothing of disks) to the blob store (which knows
nothing of registries). Blobs already in the store are not downloaded again, so a `--cache-dir`
that outlives the build is a base-image cache.
"""

from __future__ import annotations

import logging

from kiln.build.registries import RegistryPool
from kiln.build.state import LayerRef
from kiln.errors import LayerError
from kiln.fs import BlobStore
from kiln.image import ImageConfig
from kiln.registry import Reference, RegistryClient, pull_image

log = logging.getLogger("kiln")


def fetch_base_image(
    text: str, pool: RegistryPool, store: BlobStore, platform: tuple[str, str, str | None]
) -> tuple[ImageConfig, tuple[LayerRef, ...]]:
    """Pull image `text` for platform; return its config and layers (blobs now in store)."""
    ref = Reference.parse(text)
    client = pool.client(ref.registry, push=False)
    log.info("Retrieving image manifest %s", ref)
    pulled = pull_image(client, ref.repository, ref.reference, platform)
    config = ImageConfig.from_json(pulled.config_bytes)
    diff_ids = config.diff_ids
    if len(diff_ids) != len(pulled.layers):
        raise LayerError(
            f"{ref}: manifest lists {len(pulled.layers)} layers "
            f"but its config has {len(diff_ids)} diff_ids"
        )
    layers = []
    for layer, diff_id in zip(pulled.layers, diff_ids, strict=True):
        if not store.has(layer.digest):
            log.info("Pulling layer %s (%d bytes)", layer.digest, layer.size)
            _download(client, ref.repository, layer.digest, store)
        layers.append(LayerRef(layer.digest, diff_id, layer.size, layer.media_type))
    return config, tuple(layers)


def _download(client: RegistryClient, repository: str, digest: str, store: BlobStore) -> None:
    """Stream a blob into a file next to the store (verified by the client), then publish it."""
    tmp = store.root / f".download-{digest.split(':')[-1]}"
    try:
        with tmp.open("wb") as out:
            client.fetch_blob(repository, digest, out)
        store.add_file(tmp, digest)
    finally:
        tmp.unlink(missing_ok=True)
