"""Normalisation of ``EXPOSE`` port specs into image-config keys (``"80/tcp"``).

Why a module: Docker accepts ``80``, ``80/UDP``, ranges such as ``8000-8002/tcp`` and even
``ip:host:container`` forms, and stores each container port as its own ``"<port>/<proto>"`` key.
Matching that exactly keeps kiln's configs identical to ``docker build``'s.
"""

from __future__ import annotations

from kiln.errors import BuildError

PROTOCOLS = ("tcp", "udp", "sctp")


def normalize_port_spec(spec: str) -> list[str]:
    """Expand one EXPOSE argument into config keys, e.g. ``"80-81"`` -> ``["80/tcp", "81/tcp"]``."""
    text = spec.strip()
    port_part, _, proto = text.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in PROTOCOLS:
        raise BuildError(
            f"invalid protocol {proto!r} in port {spec!r}",
            hint=f"use one of {', '.join(PROTOCOLS)}",
        )
    # "ip:hostPort:containerPort" -- only the container port is exposed.
    port_part = port_part.rsplit(":", 1)[-1]
    start, end = _parse_range(port_part, spec)
    return [f"{port}/{proto}" for port in range(start, end + 1)]


def _parse_range(text: str, spec: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    start = _parse_port(low, spec)
    end = _parse_port(high, spec) if sep else start
    if end < start:
        raise BuildError(f"invalid port range {spec!r}: end is lower than start")
    return start, end


def _parse_port(text: str, spec: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise BuildError(
            f"invalid port {spec!r}",
            hint="EXPOSE takes PORT[/PROTO] or START-END[/PROTO] with ports 0-65535",
        )
    return int(text)
