"""Which proxy a request goes through: ``HTTP(S)_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``.

Why its own module: CI pods reach registries through corporate proxies configured only by these
variables, and kiln must pick the same proxy ``requests`` (which kiln used before) would, so a
working set-up keeps working: lower-case names win over upper-case ones, the scheme's variable
over ``ALL_PROXY``; ``NO_PROXY`` is a comma list of ``*``, host or domain suffixes (with or
without a leading dot, optionally ``:port``), IP addresses and CIDR ranges (IPv4 and IPv6).
Loopback (``localhost``, 127.0.0.0/8, ``::1``) is never proxied, whatever the variables say:
Go's rule (``golang.org/x/net/http/httpproxy``, so Docker, BuildKit, Kaniko and crane), because
a proxy cannot reach the machine's own loopback, and a registry on 127.0.0.1 next to the build
must not fail through a proxy set for the outside world. The environment is read on every call
(cheap), so tests and long-lived processes see changes.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from kiln.errors import InvalidURL


@dataclass(frozen=True)
class Proxy:
    """A forward proxy: where to connect, and the ``Proxy-Authorization`` value if any."""

    host: str
    port: int
    authorization: str | None = None

    def __repr__(self) -> str:  # never show the credentials
        return f"Proxy({self.host!r}, {self.port})"


def environment_proxies(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``{"http": url, "https": url, "all": url, "no": list}`` from ``*_proxy`` variables;
    a lower-case variable overrides its upper-case twin (urllib's and requests' rule)."""
    env = os.environ if environ is None else environ
    found: dict[str, str] = {}
    for lower_wins in (False, True):
        for name, value in env.items():
            if len(name) > 6 and name.lower().endswith("_proxy") and value:
                if lower_wins and name != name.lower():
                    continue
                found[name[:-6].lower()] = value
    return found


def proxy_for(url: str, environ: Mapping[str, str] | None = None) -> Proxy | None:
    """The proxy to use for ``url``, or None for a direct connection."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or is_loopback(host):
        return None
    proxies = environment_proxies(environ)
    if bypass(host, parts.port, proxies.get("no", "")):
        return None
    spec = proxies.get(parts.scheme.lower()) or proxies.get("all")
    return parse_proxy(spec) if spec else None


def parse_proxy(spec: str) -> Proxy:
    """``[http://][user:password@]host[:port]`` as a ``Proxy`` (port 80 when none is given)."""
    if "://" not in spec:
        spec = "http://" + spec
    parts = urlsplit(spec)
    if parts.scheme.lower() != "http" or not parts.hostname:
        # TLS to the proxy itself would nest TLS in TLS; socks needs another protocol.
        raise InvalidURL(f"unsupported proxy {parts.scheme}://{parts.hostname or ''}")
    authorization = None
    if parts.username is not None:
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        authorization = "Basic " + base64.b64encode(pair).decode("ascii")
    return Proxy(parts.hostname, parts.port or 80, authorization)


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (lower-case host, no brackets)."""
    if host == "localhost":
        return True
    address = _ip(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


def bypass(host: str, port: int | None, no_proxy: str) -> bool:
    """True if ``NO_PROXY`` exempts ``host`` (lower-case, no brackets) on ``port``."""
    entries = [entry.strip().lower() for entry in no_proxy.split(",") if entry.strip()]
    if not entries:
        return False
    if "*" in entries:
        return True
    address = _ip(host)
    host_port = f"[{host}]:{port}" if ":" in host else f"{host}:{port}" if port else host
    for entry in entries:
        if address is not None:
            if "/" in entry:
                try:
                    if address in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            if entry.strip("[]") == host or entry == host_port:
                return True
            continue
        # requests' own rule (a plain suffix) plus urllib's (the name itself, a leading dot).
        if host.endswith(entry) or host_port.endswith(entry) or host == entry.lstrip("."):
            return True
    return False


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not (host[:1].isdigit() or ":" in host):
        return None
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
