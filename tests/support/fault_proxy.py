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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from kiln.closeable import Closeable
from tests.support.http_server import Exchange, HttpServer

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
class FaultProxy(Closeable):
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
        self._server = HttpServer(self._proxy)
        self.host = self._server.host

    def close(self) -> None:
        """Shut the proxy down."""
        self._server.close()

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

    def _proxy(self, exchange: Exchange) -> None:
        fault = self.choose(exchange.method, exchange.path)
        if fault is not None and fault.kind in ("status", "reply"):
            headers = {"Content-Type": "application/json"}
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            exchange.reply(fault.status, fault.body, headers)
            return
        if fault is not None and fault.kind == "slow":
            time.sleep(0.3)
        status, reason, headers, payload = self._forward(exchange)
        length = None if exchange.method == "HEAD" else len(payload)
        if fault is None or fault.kind not in ("reset", "truncate"):
            exchange.head(status, headers, length=length, reason=reason)
            if exchange.method != "HEAD":
                exchange.write(payload)
            return
        # The head and half the body, then the connection dropped (RST or FIN).
        exchange.close()
        if fault.kind == "reset" and not payload:
            exchange.reset()
            return
        exchange.head(status, headers, length=length, reason=reason)
        exchange.write(payload[: len(payload) // 2])
        if fault.kind == "reset":
            exchange.reset()

    def _forward(self, exchange: Exchange) -> tuple[int, str, dict[str, str], bytes]:
        """Send the request on to the upstream registry, as it came (``Host`` included)."""
        conn = http.client.HTTPConnection(self.upstream, timeout=60)
        try:
            items = exchange.headers.items()
            headers = {k: v for k, v in items if k.lower() not in _HOP_BY_HOP}
            if exchange.body or exchange.method in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(exchange.body))
            conn.request(exchange.method, exchange.path, exchange.body or None, headers)
            response = conn.getresponse()
            payload = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in _HOP_BY_HOP
                and (k.lower() != "content-length" or exchange.method == "HEAD")
            }
            return response.status, response.reason, kept, payload
        finally:
            conn.close()
