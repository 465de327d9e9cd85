"""The test suite's loopback DNS server (``tests.support.local_dns``) really is what glibc asks in
the child, also when another session already holds 127.0.0.1:53; checked with a bare
``getaddrinfo``, not through kiln."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

from tests.support.local_dns import LocalDNS, NxdomainResponder


def _lookup(name: str) -> str:
    """Run by ``LocalDNS.call`` in a child: how ``getaddrinfo(name)`` fails."""
    try:
        socket.getaddrinfo(name, 80)
    except socket.gaierror as exc:
        return "EAI_NONAME" if exc.errno == socket.EAI_NONAME else f"other: {exc}"
    return "resolved"


def test_glibc_in_the_child_gets_nxdomain_from_the_local_server(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as held:
        with contextlib.suppress(OSError):  # if someone else holds it: the same situation
            held.bind(("127.0.0.1", 53))
        with NxdomainResponder() as responder:
            assert responder.address.startswith("127.") and responder.address != "127.0.0.1"
            assert (
                LocalDNS(responder, tmp_path).call(_lookup, "nosuch.kiln.invalid") == "EAI_NONAME"
            )
    assert "nosuch.kiln.invalid" in responder.queries
