"""``Response``: one HTTP answer from ``http.client``, with the body's failures named for kiln.

Why a wrapper: ``http.client`` reports a body cut short in three ways (``IncompleteRead``, a
reset, or, for a length-framed body read in pieces, silently ending early), and its connection
may go back to the pool only once the body was read to its end. This class reads the body in
pieces (never all in memory unless asked), turns every failure into ``kiln.errors``' network
classes (a short body is ``TruncatedBody``, which callers retry) and tells the pool, exactly
once, whether the connection may be reused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol

from kiln.closeable import Closeable
from kiln.errors import ConnectionLost, NetworkError, NetworkTimeout, TLSError, TruncatedBody

if TYPE_CHECKING:
    from email.message import Message  # http.client's headers; imported with it

_DRAIN_LIMIT = 64 * 1024  # a response closed with at most this much body left is read out


class RawBody(Protocol):
    """What the body is read from: an ``http.client.HTTPResponse`` (or a stream in tests)."""

    def read(self, amt: int) -> bytes: ...


def exchange_error(exc: BaseException, what: str, *, tls_fatal: bool) -> NetworkError | None:
    """A failure while sending a request or reading its answer as kiln's class (timeout, cut
    short, broken, TLS); None if it is no network failure (a bug, an interrupt). ``tls_fatal``:
    a TLS error here is a TLS problem (the server refusing our client certificate in its first
    answer), not a connection broken in passing."""
    if isinstance(exc, NetworkError):
        return exc
    if isinstance(exc, TimeoutError):
        return NetworkTimeout(f"{what}: timed out")
    if tls_fatal and is_tls_error(exc):
        return TLSError(f"{what}: {exc}")
    name = type(exc).__name__
    if name == "IncompleteRead":
        return TruncatedBody(f"{what}: the body ended early")
    if name == "RemoteDisconnected":
        return ConnectionLost(f"{what}: the server closed the connection without answering")
    if isinstance(exc, OSError):
        return ConnectionLost(f"{what}: {exc.strerror or exc}")
    http_client = sys.modules.get("http.client")
    if http_client is not None and isinstance(exc, http_client.HTTPException):
        return ConnectionLost(f"{what}: the answer is not HTTP as expected ({name})")
    return None


def is_tls_error(exc: BaseException) -> bool:
    """True for the ``ssl`` module's errors (if it was ever imported)."""
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(exc, ssl.SSLError | ssl.CertificateError)


class Response(Closeable):
    """One answer: ``status_code``, ``reason``, case-insensitive ``headers``, the final ``url``
    (after redirects) and a body to read once. Use it in a ``with`` block (or ``close()``) so
    the connection is released; a body read to its end releases it by itself."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        headers: Message,
        url: str,
        raw: RawBody | None,
        *,
        length: int | None = None,
        release: Callable[[bool], None] | None = None,
        what: str = "response",
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.url = url
        self._raw = raw
        self._left = length  # body bytes still expected when the framing says (else None)
        self._release = release
        self._what = what
        self._content: bytes | None = None
        if raw is None or length == 0:
            self._finish(True)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    @property
    def ok(self) -> bool:
        """True for statuses below 400."""
        return self.status_code < 400

    def read(self, size: int = 1 << 20) -> bytes:
        """Up to ``size`` bytes of the body; b"" at its end (``TruncatedBody`` if it ended
        before the length its framing announced)."""
        if self._raw is None or self._left == 0:
            return b""
        try:
            data = self._raw.read(size)
        except BaseException as exc:
            self._finish(False)
            error = exchange_error(exc, self._what, tls_fatal=False)
            if error is None:
                raise
            raise error from exc
        if self._left is not None:
            if not data and self._left > 0:
                self._finish(False)
                raise TruncatedBody(f"{self._what}: the body ended {self._left} bytes early")
            self._left -= len(data)
        if not data or self._left == 0:
            self._finish(True)
        return data

    def iter_content(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes, never all in memory."""
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        while data := self.read(chunk_size):
            yield data

    @property
    def content(self) -> bytes:
        """The whole body (read once, then kept)."""
        if self._content is None:
            self._content = b"".join(self.iter_content(1 << 20))
        return self._content

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return json.loads(self.content)

    def close(self) -> None:
        """Release the connection: back to the pool if the body was (or cheaply can be) read
        to its end, else closed."""
        if self._release is None:
            return
        if self._left is not None and self._left <= _DRAIN_LIMIT:
            try:
                while self.read(_DRAIN_LIMIT):
                    pass
            except NetworkError:
                pass  # read() released the connection as broken
            return
        self._finish(False)

    def _finish(self, reusable: bool) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(reusable)
