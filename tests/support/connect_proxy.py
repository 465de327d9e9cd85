"""A tiny forward proxy on loopback: ``CONNECT`` tunnels, and plain-HTTP requests answered
directly, recording what the client sent.

Why: kiln's HTTP client must reach HTTPS registries through the proxies CI pods are given
(``HTTPS_PROXY``), with the proxy credentials in ``Proxy-Authorization``; only a real proxy on
a real socket shows the exact bytes. Plain-HTTP requests are not forwarded: the proxy answers
them itself (200, the request line as body), which is all a test of the absolute-URI form needs.

Loopback is never proxied (Go's rule, which kiln follows), so tests name the registry
``PROXIED_NAME``: a ``.invalid`` name the client cannot resolve, which only this proxy maps to
127.0.0.1. A request that succeeds through it therefore went through the proxy. Tunnels to any
other name are refused (502), so nothing is ever forwarded off the machine.
"""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass, field

from tests.support.http_server import Exchange, HttpServer

#: A name only the proxy resolves (to 127.0.0.1); test certificates carry it too.
PROXIED_NAME = "registry.kiln.invalid"
_TARGETS = {PROXIED_NAME: "127.0.0.1", "127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}


@dataclass
class ProxyLog:
    """What the proxy saw: request lines and their ``Proxy-Authorization`` values."""

    lines: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


class ConnectProxy(HttpServer):
    """Listens on ``127.0.0.1:port``; use as a context manager or call ``close()``."""

    def __init__(self) -> None:
        self.log = ProxyLog()
        super().__init__(self._handle)

    def _handle(self, exchange: Exchange) -> None:
        self.log.lines.append(exchange.handler.requestline)
        self.log.authorizations.append(exchange.headers.get("Proxy-Authorization"))
        if exchange.method != "CONNECT":  # plain HTTP: answer with the request line
            exchange.reply(200, exchange.handler.requestline.encode())
            return
        host, _, port = exchange.path.rpartition(":")
        target = _TARGETS.get(host.strip("[]").lower())
        try:
            if target is None:
                raise OSError("not a name this proxy serves")
            upstream = socket.create_connection((target, int(port)), timeout=10)
        except OSError:
            exchange.reply(502, b"no tunnel")
            return
        exchange.head(200, reason="Connection established")
        exchange.handler.wfile.flush()
        _pipe(exchange.handler.connection, upstream)
        exchange.close()


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with upstream:
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for source in readable:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)
