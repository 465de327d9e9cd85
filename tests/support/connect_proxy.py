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
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: A name only the proxy resolves (to 127.0.0.1); test certificates carry it too.
PROXIED_NAME = "registry.kiln.invalid"
_TARGETS = {PROXIED_NAME: "127.0.0.1", "127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1"}


@dataclass
class ProxyLog:
    """What the proxy saw: request lines and their ``Proxy-Authorization`` values."""

    lines: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)


class ConnectProxy:
    """Listens on ``127.0.0.1:port``; use as a context manager or call ``stop()``."""

    def __init__(self) -> None:
        self.log = ProxyLog()
        log = self.log

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _record(self) -> None:
                log.lines.append(self.requestline)
                log.authorizations.append(self.headers.get("Proxy-Authorization"))

            def do_CONNECT(self) -> None:
                self._record()
                host, _, port = self.path.rpartition(":")
                target = _TARGETS.get(host.strip("[]").lower())
                if target is None:
                    self.send_error(502)
                    return
                try:
                    upstream = socket.create_connection((target, int(port)), timeout=10)
                except OSError:
                    self.send_error(502)
                    return
                self.send_response(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                _pipe(self.connection, upstream)
                self.close_connection = True

            def do_GET(self) -> None:
                self._record()
                body = self.requestline.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the proxy down."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ConnectProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
