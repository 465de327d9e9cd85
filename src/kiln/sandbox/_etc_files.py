"""The ``/etc/resolv.conf`` and ``/etc/hosts`` a RUN step sees.

Why: like ``docker build``, a RUN step resolves names the way the host does, and its own
hostname resolves to loopback (tools such as ``sudo`` or Java's ``getLocalHost`` insist on it).
The host's ``resolv.conf`` is used as is; ``hosts`` is the host's plus a line for the sandbox's
hostname, written to a private temporary file that lives exactly as long as the run. Neither is
ever written into the rootfs, so neither can end up in a layer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")


@contextmanager
def etc_files(hostname: str) -> Iterator[dict[str, Path]]:
    """Yield ``{rootfs-relative target: host file}`` for the run's bind mounts."""
    with tempfile.TemporaryDirectory(prefix="kiln-etc-") as scratch:
        hosts = Path(scratch) / "hosts"
        hosts.write_text(hosts_content(_read_or_empty(HOST_HOSTS), hostname))
        hosts.chmod(0o644)
        yield {"etc/resolv.conf": HOST_RESOLV_CONF, "etc/hosts": hosts}


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
