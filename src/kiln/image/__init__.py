"""kiln.image: the OCI/Docker image data model and the two image writers.

Why a package: everything that knows the shape of an image -- media types, descriptors,
manifests and indexes, the config and its history -- lives here as immutable values with no
I/O, so the registry client and the build loop share one model. The only I/O is in the writers
(``write_oci_layout``, ``write_docker_archive``), which stream blobs from a ``BlobReader``.
"""

from __future__ import annotations

from kiln.image import mediatypes
from kiln.image.blobs import BlobReader
from kiln.image.config import DEFAULT_PATH, ImageConfig
from kiln.image.descriptor import Descriptor
from kiln.image.digest import digest_of, is_valid_digest
from kiln.image.docker_archive import write_docker_archive
from kiln.image.errors import ImageFormatError
from kiln.image.healthcheck import Healthcheck
from kiln.image.history import HistoryEntry
from kiln.image.manifest import Index, Manifest, build_index, build_manifest, parse_manifest
from kiln.image.oci_layout import write_oci_layout
from kiln.image.platform import Platform
from kiln.image.ports import normalize_port_spec

__all__ = [
    "DEFAULT_PATH",
    "BlobReader",
    "Descriptor",
    "Healthcheck",
    "HistoryEntry",
    "ImageConfig",
    "ImageFormatError",
    "Index",
    "Manifest",
    "Platform",
    "build_index",
    "build_manifest",
    "digest_of",
    "is_valid_digest",
    "mediatypes",
    "normalize_port_spec",
    "parse_manifest",
    "write_docker_archive",
    "write_oci_layout",
]
