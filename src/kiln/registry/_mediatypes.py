"""The media types the registry client negotiates: the ``Accept`` list a pull sends.

Why: every name lives in ``kiln.image.mediatypes`` (schema 1 included, recognised only to refuse
it clearly); this module only adds what a pull asks for, and keeps the short names the client
uses.
"""

from __future__ import annotations

from kiln.image.mediatypes import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
)
from kiln.image.mediatypes import DOCKER_SCHEMA1_MANIFEST as DOCKER_SCHEMA1
from kiln.image.mediatypes import DOCKER_SCHEMA1_SIGNED_MANIFEST as DOCKER_SCHEMA1_SIGNED

#: What ``resolve_image`` asks for: every manifest kind it can read, images and indexes alike.
PULL_ACCEPT = (OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST)

__all__ = [
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "DOCKER_SCHEMA1",
    "DOCKER_SCHEMA1_SIGNED",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "PULL_ACCEPT",
]
