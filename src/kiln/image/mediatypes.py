"""Media type strings for Docker and OCI image documents and layers.

Why a module of constants: every part of kiln that reads or writes manifests branches on these
strings, and a typo in one is a silent interoperability bug. The helpers answer the few questions
callers ask of a media type (is it an index? which layer type for this format?) in one place.
"""

from __future__ import annotations

from typing import Literal

ImageFormat = Literal["docker", "oci"]
Compression = Literal["gzip", "zstd", "none"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_ZSTD = "application/vnd.docker.image.rootfs.diff.tar.zstd"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_NONDISTRIBUTABLE_LAYER = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_NONDISTRIBUTABLE_LAYER_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_NONDISTRIBUTABLE_LAYER_ZSTD = "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1_MANIFEST, DOCKER_SCHEMA1_SIGNED_MANIFEST})
CONFIG_TYPES = frozenset({DOCKER_CONFIG, OCI_CONFIG})
FOREIGN_LAYER_TYPES = frozenset(
    {
        DOCKER_FOREIGN_LAYER,
        OCI_NONDISTRIBUTABLE_LAYER,
        OCI_NONDISTRIBUTABLE_LAYER_GZIP,
        OCI_NONDISTRIBUTABLE_LAYER_ZSTD,
    }
)

_LAYERS: dict[tuple[str, str], str] = {
    ("docker", "gzip"): DOCKER_LAYER_GZIP,
    ("docker", "zstd"): DOCKER_LAYER_ZSTD,
    ("docker", "none"): DOCKER_LAYER,
    ("oci", "gzip"): OCI_LAYER_GZIP,
    ("oci", "zstd"): OCI_LAYER_ZSTD,
    ("oci", "none"): OCI_LAYER,
}

_LAYER_COMPRESSION: dict[str, Compression] = {
    DOCKER_LAYER: "none",
    DOCKER_LAYER_GZIP: "gzip",
    DOCKER_LAYER_ZSTD: "zstd",
    DOCKER_FOREIGN_LAYER: "gzip",
    OCI_LAYER: "none",
    OCI_LAYER_GZIP: "gzip",
    OCI_LAYER_ZSTD: "zstd",
    OCI_NONDISTRIBUTABLE_LAYER: "none",
    OCI_NONDISTRIBUTABLE_LAYER_GZIP: "gzip",
    OCI_NONDISTRIBUTABLE_LAYER_ZSTD: "zstd",
}


def is_index(media_type: str) -> bool:
    """True for a multi-platform index (OCI image index or Docker manifest list)."""
    return media_type in INDEX_TYPES


def is_manifest(media_type: str) -> bool:
    """True for a single-image manifest (OCI or Docker schema 2; not schema 1)."""
    return media_type in MANIFEST_TYPES


def is_foreign_layer(media_type: str) -> bool:
    """True for layers registries may not serve (Windows base layers); never push these."""
    return media_type in FOREIGN_LAYER_TYPES


def image_format(media_type: str) -> ImageFormat:
    """Which family ("docker" or "oci") a manifest, index, config or layer type belongs to."""
    if media_type.startswith("application/vnd.docker."):
        return "docker"
    if media_type.startswith("application/vnd.oci."):
        return "oci"
    raise ValueError(f"not a Docker or OCI media type: {media_type!r}")


def layer_media_type(fmt: str, compression: str) -> str:
    """The layer media type for an image format ("docker"/"oci") and a compression."""
    try:
        return _LAYERS[(fmt, compression)]
    except KeyError:
        raise ValueError(
            f"no layer media type for format {fmt!r} with compression {compression!r}"
        ) from None


def layer_compression(media_type: str) -> Compression:
    """The compression a layer media type declares ("gzip", "zstd" or "none")."""
    try:
        return _LAYER_COMPRESSION[media_type]
    except KeyError:
        raise ValueError(f"not a layer media type: {media_type!r}") from None


def convert_layer_media_type(media_type: str, fmt: str) -> str:
    """Translate a layer type to the other format, keeping compression (base image reuse).

    Foreign layers keep their type: they cannot be re-expressed and must not be rewritten.
    """
    if is_foreign_layer(media_type):
        return media_type
    return layer_media_type(fmt, layer_compression(media_type))


def manifest_media_type(fmt: str) -> str:
    """The manifest media type for an image format."""
    return {"docker": DOCKER_MANIFEST, "oci": OCI_MANIFEST}[_check_format(fmt)]


def config_media_type(fmt: str) -> str:
    """The config media type for an image format."""
    return {"docker": DOCKER_CONFIG, "oci": OCI_CONFIG}[_check_format(fmt)]


def index_media_type(fmt: str) -> str:
    """The index media type for an image format."""
    return {"docker": DOCKER_MANIFEST_LIST, "oci": OCI_INDEX}[_check_format(fmt)]


def _check_format(fmt: str) -> str:
    if fmt not in ("docker", "oci"):
        raise ValueError(f"image format must be 'docker' or 'oci', not {fmt!r}")
    return fmt
