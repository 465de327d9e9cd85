"""The retry layer: one HTTP request, retried with backoff on transient failures.

Why separate: registries (and the blob stores behind them) fail transiently under load; a build
must survive a 503 or a dropped connection, but must never hammer a registry or retry a request
that can only fail again (a 404, a 400). Auth sits above this layer; the socket below it.
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from urllib.parse import urlencode

from kiln.errors import RegistryError, Remedy
from kiln.net import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from kiln.net import TRANSIENT, NameNotFound, NetError, RequestBody, Response, TLSError

#: A request body: bytes, or a function opening a fresh stream (so a retry can resend it).
Body = bytes | Callable[[], BinaryIO] | None

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_MAX_RETRY_AFTER = 60.0


class HttpSession(Protocol):
    """What the transport sends through: a ``kiln.net.Client`` (or a scripted one in tests)."""

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: RequestBody = None,
        stream: bool = False,
        timeout: float | tuple[float, float] | None = None,
    ) -> Response: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait: ``base * 2**attempt`` plus jitter, capped."""

    retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 10.0

    def delay(self, attempt: int, response: Response | None = None) -> float:
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
    import email.utils  # rare (an HTTP date), and about 6 ms to import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class Transport:
    """Sends requests through an ``HttpSession`` with retries; knows nothing about auth."""

    def __init__(
        self,
        session: HttpSession,
        *,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.session = session
        self.policy = policy
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
        retry: bool = True,
    ) -> Response:
        """Send once, retrying on connection errors (also an answer cut short) and
        408/429/5xx; return the last response.

        Non-retryable responses (including other 4xx) are returned to the caller to interpret.
        TLS failures are never retried: a certificate does not become valid by waiting; nor is
        a host name DNS says does not exist. Messages name the cause and the host.
        ``retry=False`` sends exactly once (for requests whose caller recovers by itself).
        """
        attempt = 0
        retries = self.policy.retries if retry else 0
        while True:
            try:
                response = self._send(method, url, headers, body, stream, auth, data)
            except TLSError as exc:
                raise tls_error(exc, url, reference) from exc
            except TRANSIENT as exc:  # refused, reset, timed out, or the answer cut short
                if attempt >= retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise unreachable(
                        f"{method} {_safe_url(url)} failed{tries}: {exc}", url, reference
                    ) from exc
                self.sleep(self.policy.delay(attempt))
            except NameNotFound as exc:  # DNS says no such name: asking again cannot help
                raise RegistryError(
                    f"{method} {_safe_url(url)} failed: {exc}",
                    reference=reference,
                    hint="check the host name (and, for a proxy, the *_PROXY variables)",
                ) from exc
            except NetError as exc:
                raise RegistryError(
                    f"{method} {_safe_url(url)} failed: {exc}", reference=reference
                ) from exc
            else:
                if response.status_code not in RETRYABLE_STATUS or attempt >= retries:
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
    ) -> Response:
        all_headers = dict(headers or {})
        if auth is not None:
            pair = f"{auth[0]}:{auth[1]}".encode()
            all_headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        stream_body = body() if callable(body) else None
        payload: BinaryIO | bytes | None = None
        if data is not None:
            payload = urlencode(data).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        if stream_body is not None:
            payload = stream_body
        elif isinstance(body, bytes):
            payload = body
        try:
            return self.session.request(
                method,
                url,
                headers=all_headers,
                body=payload,
                stream=stream,
                timeout=self.timeout,
            )
        finally:
            if stream_body is not None:
                stream_body.close()


def host_of(url: str) -> str:
    """``host[:port]`` of a URL: what ``insecure_registries`` and friends name."""
    return url.split("://", 1)[-1].split("/", 1)[0]


def unreachable(message: str, url: str, reference: str) -> RegistryError:
    """A ``RegistryError`` for a registry that did not answer. Over HTTPS, the registry may
    serve plain HTTP only (on another port, so nothing answers TLS here): the hint names the
    option that says so; a plain-HTTP request already has it."""
    if not url.startswith("https://"):
        return RegistryError(
            message, reference=reference, hint="check that the registry is reachable"
        )
    return RegistryError(
        message,
        reference=reference,
        hint="check that the registry is reachable (and, if it serves plain HTTP, mark it "
        "with {0})",
        remedies=[Remedy("insecure_registries", [host_of(url)])],
    )


def tls_error(exc: TLSError, url: str, reference: str) -> RegistryError:
    """A ``RegistryError`` explaining a TLS failure and which flag addresses it."""
    text = str(exc).lower()
    host = host_of(url)
    # Remedies are option names and values; the CLI spells them as flags, the API as keywords.
    remedies: tuple[Remedy, ...]
    if "wrong version number" in text or "record layer failure" in text:
        problem = "the registry answered in plain HTTP, not HTTPS"
        hint = f"if {host} really serves plain HTTP, mark it with {{0}}"
        remedies = (Remedy("insecure_registries", [host]),)
    elif "certificate verify failed" in text:
        reason = str(exc).partition("certificate verify failed:")[2].split("(_ssl")[0].strip()
        problem = "its TLS certificate could not be verified" + (f" ({reason})" if reason else "")
        hint = "trust its CA with {0}, or (unsafe) {1}"
        remedies = (
            Remedy("registry_certificates", {host: "/path/ca.crt"}),
            Remedy("skip_tls_verify_registries", [host]),
        )
    elif "certificate required" in text or "bad certificate" in text or "unknown ca" in text:
        problem = "the registry rejected the TLS client certificate (or none was sent)"
        hint = "give one with {0}"
        remedies = (
            Remedy("registry_client_certs", {host: ("/path/client.crt", "/path/client.key")}),
        )
    else:
        problem = "the TLS handshake failed"
        hint = "check the registry's TLS setup and its CA ({0})"
        remedies = (Remedy("registry_certificates"),)
    return RegistryError(
        f"SSLError talking to {host}: {problem}", reference=reference, hint=hint, remedies=remedies
    )


def _safe_url(url: str) -> str:
    """``url`` without its query string (upload URLs may carry opaque state tokens)."""
    return url.split("?", 1)[0]
