"""The finished image: assemble config and manifest, then push / write a tarball / an OCI layout.

Why here: assembling needs the stage state (build), the data model (image) and the blob store (fs);
pushing needs registry clients. The manifest bytes are built once, so every destination, the
tarball, the layout and the digest file all name the same digest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from kiln.builder.publish import Blob, Publication, config_blob, publish
from kiln.builder.registries import RegistryPool
from kiln.builder.state import LayerRef
from kiln.errors import Remedy, UsageError
from kiln.fs import BlobStore
from kiln.image import (
    Descriptor,
    ImageConfig,
    build_manifest,
    digest_of,
    mediatypes,
    write_docker_archive,
    write_oci_layout,
)
from kiln.registry import Reference

log = logging.getLogger("kiln")


@dataclass(frozen=True)
class AssembledImage:
    """The bytes that define an image, plus the layer blobs they reference."""

    config: bytes
    config_digest: str
    manifest: bytes
    manifest_media_type: str
    digest: str
    layers: tuple[LayerRef, ...]


def assemble(config: ImageConfig, layers: Sequence[LayerRef], fmt: str) -> AssembledImage:
    """Serialise config and manifest in Docker v2s2 (`docker`) or OCI (`oci`) form."""
    config_bytes = config.to_json()
    config_digest = digest_of(config_bytes)
    config_type = mediatypes.OCI_CONFIG if fmt == "oci" else mediatypes.DOCKER_CONFIG
    layer_descriptors = [
        Descriptor(_layer_media_type(layer.media_type, fmt), layer.digest, layer.size)
        for layer in layers
    ]
    config_descriptor = Descriptor(config_type, config_digest, len(config_bytes))
    manifest = build_manifest(config_descriptor, layer_descriptors, fmt)
    manifest_type = mediatypes.OCI_MANIFEST if fmt == "oci" else mediatypes.DOCKER_MANIFEST
    return AssembledImage(
        config=config_bytes,
        config_digest=config_digest,
        manifest=manifest,
        manifest_media_type=manifest_type,
        digest=digest_of(manifest),
        layers=tuple(layers),
    )


_EQUIVALENT_LAYER_TYPES = (
    (mediatypes.DOCKER_LAYER_GZIP, mediatypes.OCI_LAYER_GZIP),
    (mediatypes.DOCKER_LAYER, mediatypes.OCI_LAYER),
    (mediatypes.DOCKER_FOREIGN_LAYER, mediatypes.OCI_NONDISTRIBUTABLE_LAYER_GZIP),
)


def _layer_media_type(media_type: str, fmt: str) -> str:
    """Map a layer's media type to the output format; the blob bytes stay the same."""
    for docker, oci in _EQUIVALENT_LAYER_TYPES:
        if media_type in (docker, oci):
            return oci if fmt == "oci" else docker
    if fmt != "oci" and "zstd" in media_type:
        raise UsageError(
            "the image has zstd-compressed layers, which Docker v2 schema 2 cannot describe",
            hint="add {0}",
            remedies=(Remedy("image_format", "oci"),),
        )
    return media_type


def push(
    image: AssembledImage, destination: str, pool: RegistryPool, store: BlobStore
) -> Reference:
    """Upload every blob (skipping those present), verify them, then put the manifest."""
    oci = image.manifest_media_type == mediatypes.OCI_MANIFEST
    config_type = mediatypes.OCI_CONFIG if oci else mediatypes.DOCKER_CONFIG
    layers = tuple(
        Blob(layer.digest, layer.size, layer.media_type, partial(store.open, layer.digest))
        for layer in image.layers
    )
    item = Publication(
        blobs=(*layers, config_blob(image.config, config_type)),
        manifest=image.manifest,
        manifest_media_type=image.manifest_media_type,
        digest=image.digest,
    )
    return publish(item, destination, pool)


def write_tarball(
    image: AssembledImage, path: Path, repo_tags: Sequence[str], store: BlobStore
) -> None:
    """A `docker save`-style archive, loadable by `docker load` and `podman load`.

    RepoTags must be `name:tag` for loaders to accept them, so a destination given without a tag
    is recorded with `:latest`, as Docker would push it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = [f"{ref.name}:{ref.tag or 'latest'}" for ref in map(Reference.parse, repo_tags)]
    write_docker_archive(
        path,
        config=image.config,
        layers=[(layer.digest, layer.diff_id) for layer in image.layers],
        blobs=store,
        repo_tags=tags,
        manifest=image.manifest,
        manifest_media_type=image.manifest_media_type,
    )
    log.info("Wrote image tarball %s (manifest digest %s)", path, image.digest)


def write_layout(image: AssembledImage, path: Path, tag: str | None, store: BlobStore) -> None:
    """An OCI image layout directory (created, or extended with this image).

    It holds the very manifest the build printed and pushed, media types included: a layout of a
    `--image-format docker` build lists a Docker manifest, which `kiln push` and Kaniko-style
    tools read but skopeo and umoci do not; `--image-format oci` is how to get OCI media types.
    """
    write_oci_layout(
        path,
        manifest=image.manifest,
        manifest_media_type=image.manifest_media_type,
        config=image.config,
        blobs=store,
        layer_digests=[layer.digest for layer in image.layers],
        tag=tag,
    )
    log.info("Wrote OCI layout %s (manifest digest %s)", path, image.digest)
    if image.manifest_media_type == mediatypes.DOCKER_MANIFEST:
        log.info(
            "The layout holds a Docker v2 schema 2 manifest (as the pushed image); skopeo and "
            "umoci read only OCI manifests from a layout: build with the OCI image format "
            "(image format oci) for them"
        )
