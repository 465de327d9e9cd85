"""ctypes bindings for mount(2) and umount2(2), for overlay snapshots.

Why kiln.fs has its own copy: ``kiln.fs`` may import nothing from kiln but ``errors`` (the
sandbox, which has similar bindings, sits above it), and the overlay snapshotter needs exactly
these two calls. Failures surface as ``OSError`` with ``errno`` set, like the ``os`` module.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

MNT_DETACH = 0x2

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """mount(2)."""
    result = _libc.mount(
        os.fsencode(source),
        os.fsencode(target),
        os.fsencode(fstype),
        ctypes.c_ulong(flags),
        os.fsencode(data),
    )
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {fstype} on {target}: {os.strerror(err)}")


def umount(target: str, flags: int = 0) -> None:
    """umount2(2)."""
    if _libc.umount2(os.fsencode(target), ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")
