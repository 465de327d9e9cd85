"""kiln.registry: talk to container registries (Distribution API v2 / OCI distribution).

Why a package: references, credentials, auth, retries and the API client are separate
concerns with separate tests; callers only need the names re-exported here. What it reads
from a registry it returns as ``kiln.image`` values.
"""

from kiln.image.platform import DEFAULT_PLATFORM
from kiln.registry.client import RegistryClient
from kiln.registry.credentials import Credentials, load_credentials, save_credentials
from kiln.registry.pull import (
    PulledImage,
    ResolvedImage,
    check_platform,
    pull_image,
    resolve_image,
)
from kiln.registry.reference import Reference

__all__ = [
    "DEFAULT_PLATFORM",
    "Credentials",
    "PulledImage",
    "Reference",
    "RegistryClient",
    "ResolvedImage",
    "check_platform",
    "load_credentials",
    "pull_image",
    "resolve_image",
    "save_credentials",
]
