"""A fault-injecting reverse proxy on loopback, in front of a real registry.

Why: retries, resumes and push atomicity only count if they survive the failures real networks
and overloaded registries produce. The proxy forwards every request to the registry unchanged
(the ``Host`` header included, so the registry's upload URLs point back at the proxy) and, with
seeded randomness, answers some of them with 500/503/429 (+ ``Retry-After``), resets the
connection midway through a body, truncates a body, or answers slowly. Faults are bounded: a
request (method + path) fails at most ``max_per_request`` times, so retries eventually succeed.
Which requests fail is random; the kinds of those faults take turns, so a handful of faults
covers every kind whatever the number and order of a build's requests (its threads vary them).
``rule`` scripts deterministic faults, including ones that never heal. Every request is logged.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("status", "reset", "truncate", "slow")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


@dataclass(frozen=True)
class Fault:
    """What to do to one request: ``kind`` in KINDS (or "reply" for a scripted answer)."""

    kind: str
    status: int = 503
    body: bytes = b""
    retry_after: str | None = None


@dataclass
class Seen:
    """One request as the proxy saw it."""

    method: str
    path: str
    fault: str | None


#: A scripted rule: (method, path with query) -> a fault to apply, or None.
Rule = Callable[[str, str], Fault | None]


@dataclass
class FaultProxy:
    """Forwards ``127.0.0.1:PORT`` to ``upstream`` (``host:port``, plain HTTP)."""

    upstream: str
    seed: int = 1
    rate: float = 0.0
    kinds: tuple[str, ...] = KINDS
    max_per_request: int = 2
    rule: Rule | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._faults: dict[tuple[str, str], int] = {}
        self._turn = 0  # the kind of the next random fault: kinds[_turn % len(kinds)]
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Shut the proxy down."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def choose(self, method: str, path: str) -> Fault | None:
        """The fault for this request (scripted rule first, then bounded random faults)."""
        fault = self.rule(method, path) if self.rule is not None else None
        key = (method, urlsplit(path).path)
        with self._lock:
            budget_left = self._faults.get(key, 0) < self.max_per_request
            if fault is None and budget_left and self._random.random() < self.rate:
                kind = self.kinds[self._turn % len(self.kinds)]
                self._turn += 1
                status = self._random.choice((500, 503, 429))
                retry_after = "1" if status == 429 else None
                fault = Fault(kind, status=status, retry_after=retry_after)
            if fault is not None:
                self._faults[key] = self._faults.get(key, 0) + 1
            self.seen.append(Seen(method, path, fault.kind if fault else None))
        return fault

    def count(self, method: str, fragment: str) -> int:
        """How many requests with ``method`` had ``fragment`` in their path."""
        with self._lock:
            return sum(1 for s in self.seen if s.method == method and fragment in s.path)

    def faults(self) -> list[str]:
        """The kinds of every fault injected so far."""
        with self._lock:
            return [s.fault for s in self.seen if s.fault]


class _QuietServer(ThreadingHTTPServer):
    """Dropped connections are the point here, not errors worth a traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        pass


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._proxy()

        do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _proxy(self) -> None:
            body = self._read_body()
            fault = proxy.choose(self.command, self.path)
            if fault is not None and fault.kind in ("status", "reply"):
                self._answer(fault)
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(0.3)
            status, reason, headers, payload = self._forward(body)
            if fault is not None and fault.kind in ("reset", "truncate"):
                self._broken(status, reason, headers, payload, reset=fault.kind == "reset")
                return
            self.send_response(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                if body or self.command in ("POST", "PUT", "PATCH"):
                    headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                kept = [
                    (k, v)
                    for k, v in response.getheaders()
                    if k.lower() not in _HOP_BY_HOP
                    and (k.lower() != "content-length" or self.command == "HEAD")
                ]
                return response.status, response.reason, kept, payload
            finally:
                conn.close()

        def _answer(self, fault: Fault) -> None:
            self.send_response(fault.status)
            if fault.retry_after is not None:
                self.send_header("Retry-After", fault.retry_after)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(fault.body)))
            self.end_headers()
            self.wfile.write(fault.body)

        def _broken(
            self,
            status: int,
            reason: str,
            headers: list[tuple[str, str]],
            payload: bytes,
            *,
            reset: bool,
        ) -> None:
            """Send the head and half the body, then drop the connection (RST or FIN)."""
            self.close_connection = True
            if reset and not payload:
                self._reset()
                return
            self.send_response(status, reason)
            for name, value in headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            if reset:
                self._reset()

        def _reset(self) -> None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

    return Handler
