"""Move the helper into fresh namespaces: mount, pid, uts, ipc and optionally network.

Why its own module: this is the step that needs privilege (CAP_SYS_ADMIN today; a user
namespace in the rootless variant, which would add ``CLONE_NEWUSER`` and id maps here), so its
failures carry the hint about choosing another isolation backend.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import struct

from kiln.errors import Remedy
from kiln.sandbox import _libc
from kiln.sandbox._report import SetupFailure, from_os_error

#: For a set-up step refused for lack of privilege. Both the namespaces and the chroot backend
#: mount /proc, /dev and /sys (in a mount namespace of their own), so both need CAP_SYS_ADMIN;
#: suggesting the other one would be wrong. ``auto`` picks what works: a rootless build for a
#: non-root user allowed user namespaces, ``inplace`` for root in a container without it.
PRIVILEGE_HINT = (
    "the namespaces and chroot isolations need root with CAP_SYS_ADMIN; {0} picks what this "
    "environment allows (inplace in a container without CAP_SYS_ADMIN, a rootless build for a "
    "non-root user)"
)
PRIVILEGE_REMEDIES = (Remedy("isolation", "auto"),)

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sh22x"  # struct ifreq: interface name, then the flags member of the union

_NAMES = {
    _libc.CLONE_NEWNS: "mount",
    _libc.CLONE_NEWPID: "pid",
    _libc.CLONE_NEWUTS: "uts",
    _libc.CLONE_NEWIPC: "ipc",
    _libc.CLONE_NEWNET: "network",
}


def namespace_flags(network: str) -> int:
    """The ``CLONE_NEW*`` flags for a run with the given network mode."""
    flags = _libc.CLONE_NEWNS | _libc.CLONE_NEWPID | _libc.CLONE_NEWUTS | _libc.CLONE_NEWIPC
    return flags | _libc.CLONE_NEWNET if network == "none" else flags


def enter(flags: int, hostname: str) -> None:
    """Unshare ``flags``, stop mount propagation to the host, set the hostname, bring up lo.

    The pid namespace applies to children forked after this call, not to the caller.
    """
    unshare(flags)
    if flags & _libc.CLONE_NEWNS:
        make_mounts_private()
    set_hostname(hostname)
    if flags & _libc.CLONE_NEWNET:
        bring_up_loopback()


def unshare(flags: int) -> None:
    """Move into new namespaces (``CLONE_NEW*`` flags); failures name them."""
    names = ", ".join(name for bit, name in _NAMES.items() if flags & bit)
    try:
        _libc.unshare(flags)
    except OSError as exc:
        raise _privileged(f"create {names} namespaces", exc) from exc


def make_mounts_private() -> None:
    """Nothing mounted from now on may propagate back into the host's mount table."""
    try:
        _libc.mount(None, "/", None, _libc.MS_REC | _libc.MS_PRIVATE)
    except OSError as exc:
        raise _privileged("make / a private mount", exc) from exc


def set_hostname(hostname: str) -> None:
    try:
        socket.sethostname(hostname)
    except OSError as exc:
        raise from_os_error(f"set hostname to {hostname!r}", exc) from exc


def bring_up_loopback() -> None:
    """A new network namespace starts with ``lo`` down; ``--network none`` still has loopback."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            request = struct.pack(_IFREQ, b"lo", 0)
            _, flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))
            fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, b"lo", flags | _IFF_UP))
    except OSError as exc:
        raise from_os_error("bring up the loopback interface", exc) from exc


def lacking_privilege(what: str, exc: OSError) -> SetupFailure:
    """The failure of a step refused for lack of privilege, with the isolation hint."""
    return from_os_error(what, exc, PRIVILEGE_HINT, PRIVILEGE_REMEDIES)


def _privileged(what: str, exc: OSError) -> SetupFailure:
    if exc.errno in (errno.EPERM, errno.EACCES, errno.ENOSYS):
        return lacking_privilege(what, exc)
    return from_os_error(what, exc)
