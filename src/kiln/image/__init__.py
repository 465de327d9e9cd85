"""kiln.image: the OCI/Docker image data model, its writers and the saved-image reader.

Why a package: everything that knows the shape of an image -- media types, descriptors,
manifests and indexes, platforms, the config and its history, layers and whole images -- lives
here as immutable values, so the registry client, the build loop and `kiln push` share one
model. The I/O is in the writers (``write_oci_layout``, ``write_docker_archive``) and in
``load_saved``; each streams layers through the ``Layer`` protocol, wherever their bytes live.
"""

from __future__ import annotations

from kiln.image import mediatypes
from kiln.image.blobs import BlobReader
from kiln.image.config import DEFAULT_PATH, ImageConfig
from kiln.image.descriptor import Descriptor
from kiln.image.digest import digest_of, is_valid_digest
from kiln.image.docker_archive import write_docker_archive
from kiln.image.healthcheck import Healthcheck
from kiln.image.history import HistoryEntry
from kiln.image.image import Image, assemble_image
from kiln.image.layer import BlobLayer, Layer
from kiln.image.manifest import Index, Manifest, build_index, build_manifest, parse_manifest
from kiln.image.oci_layout import write_oci_layout
from kiln.image.platform import Platform
from kiln.image.ports import normalize_port_spec
from kiln.image.saved import DirectoryBlobs, load_saved

__all__ = [
    "DEFAULT_PATH",
    "BlobLayer",
    "BlobReader",
    "Descriptor",
    "DirectoryBlobs",
    "Healthcheck",
    "HistoryEntry",
    "Image",
    "ImageConfig",
    "Index",
    "Layer",
    "Manifest",
    "Platform",
    "assemble_image",
    "build_index",
    "build_manifest",
    "digest_of",
    "is_valid_digest",
    "load_saved",
    "mediatypes",
    "normalize_port_spec",
    "parse_manifest",
    "write_docker_archive",
    "write_oci_layout",
]
