"""The user-namespace stub: ``python -m kiln.sandbox._userns_init`` becomes root in a new userns.

Why a separate, fresh interpreter: ``unshare(CLONE_NEWUSER)`` refuses multi-threaded callers,
and the id maps of a non-root user's namespace must be written from outside it (by
``newuidmap``/``newgidmap`` for subordinate ranges, or by the parent for a single id). So this
stub unshares a user and a mount namespace, tells its parent, waits until the parent has written
the maps, and then execs the real command — which now runs as root inside the namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

from kiln.sandbox import _libc

#: Set in the command's environment: kiln is already inside its user namespace.
MARKER = "KILN_USERNS"
SETUP_FAILED = 125


def main(argv: list[str]) -> NoReturn:
    """``--ready-fd N --go-fd M -- COMMAND...``."""
    if len(argv) < 6 or argv[0] != "--ready-fd" or argv[2] != "--go-fd" or argv[4] != "--":
        os.write(2, b"usage: python -m kiln.sandbox._userns_init --ready-fd N --go-fd M -- CMD\n")
        os._exit(2)
    ready, go, command = int(argv[1]), int(argv[3]), argv[5:]
    _libc.set_parent_death_signal(signal.SIGKILL)
    try:
        _libc.unshare(_libc.CLONE_NEWUSER | _libc.CLONE_NEWNS)
    except OSError as exc:
        os.write(ready, f"create a user namespace: {os.strerror(exc.errno or 0)}\n".encode())
        os._exit(SETUP_FAILED)
    os.write(ready, b"ok\n")
    os.close(ready)
    if _read_all(go) != b"ok":
        os._exit(SETUP_FAILED)  # the parent could not write the maps; it says why
    with contextlib.suppress(OSError):  # denied with a single-id map; nothing to drop then
        os.setgroups([])
    try:
        # Mounts made by the build (overlay, the sandbox's) never propagate to the host.
        _libc.mount(None, "/", None, _libc.MS_REC | _libc.MS_PRIVATE)
        os.execvp(command[0], command)
    except OSError as exc:
        os.write(2, f"kiln: user namespace set-up failed: {exc}\n".encode())
        os._exit(SETUP_FAILED)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).strip()


if __name__ == "__main__":
    main(sys.argv[1:])
