"""The ``/etc/resolv.conf`` and ``/etc/hosts`` a RUN step sees.

Why: like ``docker build``, a RUN step resolves names the way the host does, and its own
hostname resolves to loopback (tools such as ``sudo`` or Java's ``getLocalHost`` insist on it).
The host's ``resolv.conf`` is used as is; ``hosts`` is the host's plus a line for the sandbox's
hostname, written to a private temporary file. Neither is ever written into the rootfs, so
neither can end up in a layer.

The hosts file is written once per kiln process and content, not once per RUN step: steps bind
it read-only, so they can share it, and a per-step temporary directory cost every step a
``mkdtemp``, a write and an ``rmtree``. The host's file is still read for every step, so a
step sees the host's current entries; a change gives a new file. The directory goes at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")

_lock = threading.Lock()
_scratch: str | None = None  # this process's private directory of hosts files
_written: dict[str, Path] = {}  # content -> the file holding it


@contextmanager
def etc_files(hostname: str) -> Iterator[dict[str, Path]]:
    """Yield ``{rootfs-relative target: host file}`` for the run's bind mounts."""
    hosts = shared_hosts_file(hosts_content(_read_or_empty(HOST_HOSTS), hostname))
    yield {"etc/resolv.conf": HOST_RESOLV_CONF, "etc/hosts": hosts}


def shared_hosts_file(content: str) -> Path:
    """A mode-0644 file holding ``content``, written on first use and kept until exit."""
    global _scratch
    with _lock:
        path = _written.get(content)
        if path is not None and os.path.isfile(path):
            return path
        if _scratch is None or not os.path.isdir(_scratch):
            _scratch = tempfile.mkdtemp(prefix="kiln-etc-")
            atexit.register(_remove, _scratch, os.getpid())
            _written.clear()
        path = Path(_scratch) / f"hosts-{len(_written)}"
        temp = path.with_suffix(".tmp")
        temp.write_text(content)
        temp.chmod(0o644)
        os.replace(temp, path)  # complete before any step can bind it
        _written[content] = path
        return path


def _remove(scratch: str, owner: int) -> None:
    if os.getpid() == owner:  # not from a forked child that happens to run atexit handlers
        shutil.rmtree(scratch, ignore_errors=True)


def hosts_content(host_hosts: str, hostname: str) -> str:
    """The host's hosts file, plus loopback entries for ``hostname`` unless it already has one."""
    names = {name for line in host_hosts.splitlines() for name in line.split("#")[0].split()[1:]}
    if hostname in names:
        return host_hosts
    prefix = host_hosts if not host_hosts or host_hosts.endswith("\n") else host_hosts + "\n"
    return f"{prefix}127.0.0.1\t{hostname}\n::1\t{hostname}\n"


def _read_or_empty(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
