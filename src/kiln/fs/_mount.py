"""ctypes bindings for mount(2) and umount2(2), for overlay snapshots.

Why kiln.fs has its own copy: ``kiln.fs`` may import nothing from kiln but ``errors`` (the
sandbox, which has similar bindings, sits above it), and the overlay snapshotter needs exactly
these two calls. Failures surface as ``OSError`` with ``errno`` set, like the ``os`` module.
"""

from __future__ import annotations

import ctypes
import os

MNT_DETACH = 0x2


def _load_libc() -> ctypes.CDLL:
    """glibc's C library by its soname; elsewhere (musl...) as ``find_library`` finds it.

    The soname first: ``ctypes.util.find_library`` imports ``subprocess`` and runs
    ``ldconfig -p``, several milliseconds of every kiln start for a name that is always right
    on glibc systems.
    """
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c") or "libc.so.6", use_errno=True)


_libc = _load_libc()


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
