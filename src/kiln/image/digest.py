"""Content digests: the names every blob and manifest goes by.

Why a module: digests are computed in one way (sha256 over the exact bytes) and validated in one
way everywhere; a second implementation would eventually disagree about upper case or prefixes.
"""

from __future__ import annotations

import hashlib
import re

_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")


def digest_of(data: bytes) -> str:
    """The OCI digest (``sha256:<hex>``) of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_valid_digest(digest: str) -> bool:
    """True for a well-formed ``sha256:`` or ``sha512:`` digest (lower-case hex)."""
    return bool(_DIGEST.match(digest))


def digest_hex(digest: str) -> str:
    """The hex part of a validated digest, used as a file name (``blobs/sha256/<hex>``)."""
    if not is_valid_digest(digest):
        raise ValueError(f"not a valid digest: {digest!r}")
    return digest.split(":", 1)[1]
