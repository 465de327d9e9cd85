"""A scripted HTTP transport for unit-level fault injection in registry tests.

Why: retries, backoff, Retry-After and token flows need exact control over what the "server"
says on each request, which a real registry cannot give. Every behaviour scripted here also has
a test against the real ``docker-registry`` elsewhere.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPMessage
from typing import Any

from kiln.net import Body, Response
from kiln.registry import RegistryClient


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    fail_after: int | None = None  # drop the connection after this many body bytes


class _BrokenStream(io.BytesIO):
    """A body that ends in a connection reset after ``limit`` bytes."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data[:limit])

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if not chunk:
            raise ConnectionResetError("scripted connection reset")
        return chunk


@dataclass(frozen=True)
class Seen:
    """One request the client sent."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes


Step = Reply | Exception | Callable[[Seen], Reply]


class ScriptedAdapter:
    """Answers each request with the next scripted step; records every request.

    It stands in for the ``kiln.net.Session`` a ``RegistryClient`` sends through (redirects
    are the session's business: a scripted 3xx is returned as it is).
    """

    def __init__(self, steps: list[Step]) -> None:
        self.steps = list(steps)
        self.seen: list[Seen] = []

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        timeout: Any = None,
        follow_redirects: bool = False,
    ) -> Response:
        data = body
        if callable(body):
            with body() as stream_body:
                data = stream_body.read()
        seen = Seen(method, url, dict(headers or {}), bytes(data or b""))
        self.seen.append(seen)
        if not self.steps:
            raise AssertionError(f"unscripted request {seen.method} {seen.url}")
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        reply = step(seen) if callable(step) else step
        body_bytes = b"" if seen.method == "HEAD" else reply.body
        raw: io.BytesIO = io.BytesIO(body_bytes)
        length: int | None = len(body_bytes)
        if reply.fail_after is not None:
            raw, length = _BrokenStream(body_bytes, reply.fail_after), None
        headers = HTTPMessage()
        for name, value in reply.headers.items():
            headers[name] = value
        response = Response(reply.status, "scripted", headers, url, raw, length=length, what=method)
        if not stream:
            _ = response.content  # as the real client: the body is read before returning
        return response

    def close(self) -> None:
        pass


def scripted_client(
    steps: list[Step], *, retries: int = 3, **kwargs: Any
) -> tuple[RegistryClient, ScriptedAdapter, list[float]]:
    """A client for ``registry.test`` whose requests all go to a ``ScriptedAdapter``.

    Returns (client, adapter, sleeps) where ``sleeps`` records every backoff delay.
    """
    adapter = ScriptedAdapter(steps)
    sleeps: list[float] = []
    client = RegistryClient(
        "registry.test", retries=retries, session=adapter, sleep=sleeps.append, **kwargs
    )
    return client, adapter, sleeps
