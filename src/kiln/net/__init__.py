"""kiln.net: a small HTTP/1.1 client (keep-alive pool, TLS, proxies, streamed bodies).

Why a package of its own: both the registry client and the context downloader speak HTTP, the
import rules keep ``kiln.context`` from importing ``kiln.registry``, and a dependency such as
``requests`` costs more start-up time than kiln's whole HTTP use needs. It imports no other
kiln package.
"""

from kiln.net.client import DEFAULT_TIMEOUT, Client, RequestBody, safe_url
from kiln.net.errors import (
    TRANSIENT,
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    InvalidURL,
    NameNotFound,
    NetError,
    ProtocolError,
    Timeout,
    TLSError,
    TooManyRedirects,
    TruncatedBody,
)
from kiln.net.proxy import Proxy, bypass, proxy_for
from kiln.net.wire import BytesBody, Headers, Response

__all__ = [
    "DEFAULT_TIMEOUT",
    "TRANSIENT",
    "BytesBody",
    "Client",
    "ConnectError",
    "ConnectTimeout",
    "ConnectionLost",
    "Headers",
    "InvalidURL",
    "NameNotFound",
    "NetError",
    "ProtocolError",
    "Proxy",
    "RequestBody",
    "Response",
    "TLSError",
    "Timeout",
    "TooManyRedirects",
    "TruncatedBody",
    "bypass",
    "proxy_for",
    "safe_url",
]
