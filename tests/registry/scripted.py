"""A scripted HTTP transport for unit-level fault injection in registry tests.

Why: retries, backoff, Retry-After and token flows need exact control over what the "server"
says on each request, which a real registry cannot give. Every behaviour scripted here also has
a test against the real ``docker-registry`` elsewhere.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

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


class ScriptedAdapter(BaseAdapter):
    """Answers each request with the next scripted step; records every request."""

    def __init__(self, steps: list[Step]) -> None:
        super().__init__()
        self.steps = list(steps)
        self.seen: list[Seen] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body
        if hasattr(body, "read"):
            body = body.read()  # type: ignore[union-attr]
        if isinstance(body, str):
            body = body.encode()
        seen = Seen(
            str(request.method), str(request.url), dict(request.headers), bytes(body or b"")
        )
        self.seen.append(seen)
        if not self.steps:
            raise AssertionError(f"unscripted request {seen.method} {seen.url}")
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        reply = step(seen) if callable(step) else step
        response = requests.Response()
        response.status_code = reply.status
        response.headers = CaseInsensitiveDict(reply.headers)
        body_bytes = b"" if seen.method == "HEAD" else reply.body
        if reply.fail_after is not None:
            response.raw = _BrokenStream(body_bytes, reply.fail_after)
        else:
            response.raw = io.BytesIO(body_bytes)
        response.url = seen.url
        response.request = request
        response.reason = "scripted"
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
    session = requests.Session()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    sleeps: list[float] = []
    client = RegistryClient(
        "registry.test", retries=retries, session=session, sleep=sleeps.append, **kwargs
    )
    return client, adapter, sleeps
