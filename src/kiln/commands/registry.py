"""`kiln login`, `kiln warm` and `kiln push`: registry work that is not a build.

Why in build: these commands wire registries to the blob store and saved images exactly as a
build does (same pool, same cache layout, same atomic push), so they reuse the build's modules
instead of growing a second path to the registry.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kiln.builder.base_image import fetch_base_image
from kiln.builder.options import RegistryOptions
from kiln.builder.publish import publish, write_name_files
from kiln.builder.registries import RegistryPool
from kiln.fs import BlobStore
from kiln.image import Platform, load_saved
from kiln.registry import Credentials, Reference, save_credentials

log = logging.getLogger("kiln")


def login(registry: str, username: str, password: str, options: RegistryOptions) -> Path:
    """Check the credentials against ``registry``, then store them in Docker's config.json."""
    host = Reference.parse(f"{registry}/x").registry if "/" not in registry else registry
    pool = RegistryPool(options)
    try:
        credentials = Credentials(username=username, password=password, source="kiln login")
        client = pool.client_with(host, credentials)
        client.check_login()
    finally:
        pool.close()
    return save_credentials(host, username, password, options.docker_config_dir)


def warm(
    images: Sequence[Reference],
    cache_dir: Path,
    options: RegistryOptions,
    platform: Platform,
) -> list[Reference]:
    """Pull every image's manifests, config and layers into ``cache_dir`` (Kaniko's warmer)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    store = BlobStore(cache_dir)
    pool = RegistryPool(options)
    done = []
    try:
        for image in images:
            _, layers = fetch_base_image(image, pool, store, platform)
            log.info("Cached %s (%d layers)", image, len(layers))
            done.append(image)
    finally:
        pool.close()
    return done


def push_saved(
    source: Path,
    destinations: Sequence[Reference],
    options: RegistryOptions,
    *,
    tag: str | None = None,
    digest_file: Path | None = None,
    image_name_with_digest_file: Path | None = None,
) -> str:
    """Push an OCI layout or docker-archive to every destination; return the manifest digest."""
    pool = RegistryPool(options)
    with tempfile.TemporaryDirectory(prefix="kiln-push-") as scratch:
        image = load_saved(source, Path(scratch), tag)
        try:
            pinned = [publish(image, destination, pool) for destination in destinations]
        finally:
            pool.close()
    if digest_file is not None:
        digest_file.write_text(image.digest)
    write_name_files(pinned, image_name_with_digest_file, None)
    return image.digest
