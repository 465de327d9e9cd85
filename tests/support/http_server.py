"""The one HTTP server tests start: ``http.server`` on loopback, answering through a function.

Why one: the tests need a plain server (client behaviour), a lying registry, a token service,
a fault-injecting reverse proxy, a ``CONNECT`` proxy and a git/file server. Each differs only in
*what* it answers, so each is a handler function given an ``Exchange`` (the request, its body
already read, chunked or not, and ways to answer or to misbehave: reset, cut a body short,
close). The server records every request (method, path, the client's source port, so tests see
connection reuse, headers, body), listens on 127.0.0.1 on a port the kernel picked, optionally
speaks TLS, and never prints a traceback for a connection a test broke on purpose.
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from kiln.closeable import Closeable


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path: str  # with the query string
    port: int  # the client's source port: the same one means the connection was reused
    headers: dict[str, str]
    body: bytes


class Exchange:
    """One request and the means to answer it; ``handler`` is the raw request handler."""

    def __init__(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        self.handler = handler
        self.method = handler.command
        self.path = handler.path
        parts = urlsplit(handler.path)
        self.route = parts.path
        self.query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        self.headers = handler.headers
        self.body = body
        self.answered = False

    def reply(
        self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """Answer with ``body`` framed by ``Content-Length`` (unless ``headers`` frame it)."""
        self.head(status, headers, length=len(body))
        if self.method != "HEAD":
            self.handler.wfile.write(body)

    def head(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        *,
        length: int | None = None,
        reason: str | None = None,
    ) -> None:
        """Send the status line and headers only (the body is the caller's to write)."""
        self.answered = True
        headers = dict(headers or {})
        self.handler.send_response(status, reason)
        for name, value in headers.items():
            self.handler.send_header(name, value)
        framed = {name.lower() for name in headers} & {"content-length", "transfer-encoding"}
        if not framed and length is not None:
            self.handler.send_header("Content-Length", str(length))
        self.handler.end_headers()

    def reply_json(self, status: int, document: object, **headers: str) -> None:
        """Answer with ``document`` as JSON."""
        self.reply(
            status, json.dumps(document).encode(), {"Content-Type": "application/json", **headers}
        )

    def write(self, data: bytes) -> None:
        """Send raw bytes (a body, chunks, or something that is not HTTP at all)."""
        self.answered = True
        self.handler.wfile.write(data)
        self.handler.wfile.flush()

    def close(self) -> None:
        """Close the connection once this answer is sent (a FIN)."""
        self.handler.close_connection = True

    def reset(self) -> None:
        """Drop the connection with a TCP reset, right now."""
        self.answered = True
        self.handler.close_connection = True
        sock = self.handler.connection
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


Handle = Callable[[Exchange], None]


class HttpServer(Closeable):
    """Serves ``handle`` on ``127.0.0.1:port`` (TLS with ``tls``); use ``with`` or ``close()``.

    ``url`` is ``http(s)://127.0.0.1:PORT``, ``host`` is ``127.0.0.1:PORT``; ``seen`` lists
    every request. A handler that does not answer gets a 404. ``CONNECT`` requests reach the
    handler too (no body is read for them), for proxies.
    """

    def __init__(self, handle: Handle, *, tls: ssl.SSLContext | None = None) -> None:
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_class(self, handle))
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port: int = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"{'https' if tls is not None else 'http'}://{self.host}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def close(self) -> None:
        """Shut the server down."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _QuietServer(ThreadingHTTPServer):
    """Dropped connections are the point here, not errors worth a traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, framed by ``Content-Length`` or chunked."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        parts = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _handler_class(server: HttpServer, handle: Handle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _dispatch(self) -> None:
            body = b"" if self.command == "CONNECT" else read_body(self)
            headers = dict(self.headers.items())
            server.record(Seen(self.command, self.path, self.client_address[1], headers, body))
            exchange = Exchange(self, body)
            handle(exchange)
            if not exchange.answered:
                exchange.reply(404, b"not found")
            if not self.wfile.closed:
                self.wfile.flush()

        def do_GET(self) -> None:
            self._dispatch()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_CONNECT = do_GET

    return Handler


def routes(table: Mapping[str, tuple[int, Mapping[str, str], bytes]]) -> Handle:
    """A handler answering from ``table`` (path with query -> status, headers, body); 404
    for anything else."""

    def handle(exchange: Exchange) -> None:
        status, headers, body = table.get(exchange.path, (404, {}, b""))
        exchange.reply(status, body, headers)

    return handle
