"""The media-type groups the registry client negotiates and recognises.

Why: the names themselves live in ``kiln.image.mediatypes``; this module adds what only the
registry needs -- schema 1 (recognised only to reject it clearly) and the ``Accept`` list a
pull sends.
"""

from __future__ import annotations

from kiln.image.mediatypes import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST

DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

IMAGE_MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
SCHEMA1 = (DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED)

#: What ``pull_image`` asks for: every manifest kind it can read, images and indexes alike.
PULL_ACCEPT = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "IMAGE_MANIFESTS",
    "INDEXES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "PULL_ACCEPT",
    "SCHEMA1",
]
