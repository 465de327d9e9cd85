"""Names inside layer tars: cleaning untrusted entry names and the OCI whiteout convention.

Why one module: the unpacker and the layer writer must agree byte for byte on what a whiteout
looks like, and every tar entry name passes through the same cleaning before it touches disk.
"""

from __future__ import annotations

import posixpath

from kiln.errors import UnsafePathError

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"


def clean_name(name: str) -> str:
    """Normalise a tar entry name to a rootfs-relative path ("" means the root itself).

    A leading ``/`` is dropped (Docker treats absolute names as relative); ``.`` and duplicate
    slashes disappear; ``..`` is allowed only while it stays inside the root.
    """
    relative = name.lstrip("/")
    if "\x00" in relative:
        raise UnsafePathError(f"layer entry name contains a NUL byte: {name!r}")
    normal = posixpath.normpath(relative) if relative else "."
    if normal == ".." or normal.startswith("../"):
        raise UnsafePathError(
            f"layer entry {name!r} climbs out of the root filesystem",
            hint="the layer is malformed or hostile; rebuild it or use a trusted base image",
        )
    return "" if normal == "." else normal


def whiteout_name(path: str) -> str:
    """The tar entry name that deletes rootfs-relative ``path`` from lower layers."""
    parent, base = posixpath.split(path)
    return posixpath.join(parent, WHITEOUT_PREFIX + base)


def whiteout_target(base: str) -> str | None:
    """For a basename ``.wh.NAME`` return ``NAME``; None if ``base`` is not a whiteout.

    The opaque marker is not a plain whiteout and yields None; check it separately.
    """
    if not base.startswith(WHITEOUT_PREFIX) or base == OPAQUE_WHITEOUT:
        return None
    target = base[len(WHITEOUT_PREFIX) :]
    if target in ("", ".", ".."):
        raise UnsafePathError(f"whiteout entry {base!r} names no file")
    return target
