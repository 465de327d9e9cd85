"""The retry layer: one HTTP request, retried with backoff on transient failures.

Why separate: registries (and the blob stores behind them) fail transiently under load; a build
must survive a 503 or a dropped connection, but must never hammer a registry or retry a request
that can only fail again (a 404, a 400). Auth sits above this layer; the socket below it.
"""

from __future__ import annotations

import email.utils
import random
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import requests
from urllib3.exceptions import InsecureRequestWarning

from kiln.errors import RegistryError

#: A request body: bytes, or a function opening a fresh stream (so a retry can resend it).
Body = bytes | Callable[[], BinaryIO] | None

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
DEFAULT_TIMEOUT = (15.0, 120.0)  # (connect, read) seconds
_MAX_RETRY_AFTER = 60.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait: ``base * 2**attempt`` plus jitter, capped."""

    retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int, response: requests.Response | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based)."""
        if response is not None:
            after = retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return min(after, _MAX_RETRY_AFTER)
        backoff: float = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff / 2 + random.uniform(0, backoff / 2)


def retry_after(value: str | None) -> float | None:
    """Parse a ``Retry-After`` header (delta seconds or an HTTP date) into seconds."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """Sends requests through a ``requests.Session`` with retries; knows nothing about auth."""

    def __init__(
        self,
        session: requests.Session,
        *,
        policy: RetryPolicy,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.session = session
        self.policy = policy
        self.verify = verify
        self.sleep = sleep
        self.timeout = timeout

    def request(
        self,
        method: str,
        url: str,
        *,
        reference: str,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        auth: tuple[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Send once, retrying on connection errors and 408/429/5xx; return the last response.

        Non-retryable responses (including other 4xx) are returned to the caller to interpret.
        """
        attempt = 0
        while True:
            try:
                response = self._send(method, url, headers, body, stream, auth, data)
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt >= self.policy.retries:
                    raise RegistryError(
                        f"{method} {_safe_url(url)} failed after {attempt + 1} attempts: "
                        f"{type(exc).__name__}",
                        reference=reference,
                        hint="check that the registry is reachable (and the --insecure setting)",
                    ) from exc
                self.sleep(self.policy.delay(attempt))
            else:
                if response.status_code not in RETRYABLE_STATUS or attempt >= self.policy.retries:
                    return response
                wait = self.policy.delay(attempt, response)
                response.close()
                self.sleep(wait)
            attempt += 1

    def _send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        body: Body,
        stream: bool,
        auth: tuple[str, str] | None,
        data: Mapping[str, str] | None,
    ) -> requests.Response:
        stream_body = body() if callable(body) else None
        payload: BinaryIO | bytes | Mapping[str, str] | None = data
        if stream_body is not None:
            payload = stream_body
        elif isinstance(body, bytes):
            payload = body
        try:
            with warnings.catch_warnings():
                if self.verify is False:
                    # The user asked for no verification; urllib3 would warn on every request.
                    warnings.simplefilter("ignore", InsecureRequestWarning)
                return self.session.request(
                    method,
                    url,
                    headers=dict(headers or {}),
                    data=payload,
                    stream=stream,
                    auth=auth,
                    allow_redirects=False,
                    verify=self.verify,
                    timeout=self.timeout,
                )
        finally:
            if stream_body is not None:
                stream_body.close()


def _safe_url(url: str) -> str:
    """``url`` without its query string (upload URLs may carry opaque state tokens)."""
    return url.split("?", 1)[0]
