"""The exceptions of kiln's HTTP client, grouped by what a caller should do about them.

Why its own module: callers decide between "retry" (the network or the peer failed in passing:
refused, reset, cut short, too slow) and "give up" (TLS, a malformed URL, redirect loops), and
that decision must not depend on which low-level module (``socket``, ``ssl``) raised. Every
class derives from ``OSError`` so code that treats any I/O failure alike keeps working. Messages
name hosts, never URLs with credentials or query strings.
"""

from __future__ import annotations


class NetError(OSError):
    """Any failure of an HTTP exchange."""


class ConnectError(NetError):
    """No connection could be made (refused, unreachable, DNS failing for now, proxy refused)."""


class NameNotFound(NetError):
    """DNS says the host name does not exist (or has no address); never transient.

    Not a ``ConnectError``: retrying cannot heal it, so it is outside ``TRANSIENT``. A lookup
    that failed for a passing reason (no answer from the DNS server) is a ``ConnectError``.
    """


class Timeout(NetError):
    """Connecting, or waiting for the peer's next bytes, took longer than allowed."""


class ConnectTimeout(ConnectError, Timeout):
    """The connection (or the TLS handshake) was not established in time."""


class ConnectionLost(NetError):
    """The connection broke during the exchange (reset, closed early)."""


class TruncatedBody(ConnectionLost):
    """The response body ended before the length its framing announced."""


class ProtocolError(ConnectionLost):
    """The peer did not speak HTTP/1.x as expected (a malformed status line, chunk, header)."""


class TLSError(NetError):
    """The TLS handshake failed (certificate, protocol, client certificate); never transient."""


class InvalidURL(NetError):
    """The URL cannot be requested (unknown scheme, no host, unsupported proxy)."""


class TooManyRedirects(NetError):
    """More redirects than the client follows."""


#: The failures worth retrying: the same request may well succeed a moment later.
TRANSIENT: tuple[type[NetError], ...] = (ConnectError, Timeout, ConnectionLost)
