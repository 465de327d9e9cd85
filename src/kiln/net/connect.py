"""Opening ``http.client`` connections (direct, through a proxy, over TLS) and naming failures.

Why its own module: which failure a caller sees decides whether it retries. A refused port,
a timeout or a reset may heal; a TLS failure or a name DNS says does not exist will not. The
socket, ``ssl`` and ``http.client`` layers raise a dozen different classes for these; here
each becomes one of ``kiln.errors``' network classes with a message naming the host (and the
proxy, when the proxy is what failed), never a URL with credentials. ``http.client`` and
``ssl`` are imported on the first connection only.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kiln.errors import ConnectError, ConnectTimeout, NameNotFound, NetworkError, TLSError
from kiln.net.proxy import Proxy
from kiln.net.response import is_tls_error

if TYPE_CHECKING:
    import http.client

_SEND_BLOCK = 256 * 1024

#: getaddrinfo answers meaning the name has no address at all: waiting will not change that.
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


def connect(
    scheme: str,
    host: str,
    port: int,
    proxy: Proxy | None,
    timeout: float,
    tls: Callable[[], Any],
) -> http.client.HTTPConnection:
    """A connected ``HTTPConnection`` to ``host:port``: through ``proxy`` when given (a
    ``CONNECT`` tunnel for HTTPS, the proxy itself for plain HTTP), TLS for ``https``."""
    import http.client

    address = (proxy.host, proxy.port) if proxy is not None else (host, port)
    connection: http.client.HTTPConnection
    if scheme == "https":
        connection = http.client.HTTPSConnection(
            *address, timeout=timeout, context=tls(), blocksize=_SEND_BLOCK
        )
        if proxy is not None:
            headers = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
            connection.set_tunnel(host, port, headers)
    else:
        connection = http.client.HTTPConnection(*address, timeout=timeout, blocksize=_SEND_BLOCK)
    try:
        connection.connect()
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except Exception as exc:
        connection.close()
        raise connect_error(exc, host, port, proxy) from exc
    except BaseException:
        connection.close()
        raise
    return connection


def connect_error(exc: Exception, host: str, port: int, proxy: Proxy | None) -> NetworkError:
    """Name why a connection to ``host:port`` (or to ``proxy``) failed: DNS, refused, timed
    out, the proxy refusing the tunnel, TLS, or the OS's reason."""
    name = f"{host}:{port}"
    if proxy is not None:
        name = f"the proxy {proxy.host}:{proxy.port} (from the *_PROXY environment)"
    if is_tls_error(exc):
        if isinstance(exc, TimeoutError):
            return ConnectTimeout(f"TLS handshake with {host} timed out")
        return TLSError(f"TLS handshake with {host}: {exc}")
    if isinstance(exc, socket.gaierror):
        looked_up = f"the proxy {proxy.host}" if proxy is not None else host
        if exc.errno in _NO_SUCH_NAME:
            return NameNotFound(f"cannot resolve {looked_up}: DNS says the name does not exist")
        return ConnectError(f"cannot resolve {looked_up}: DNS lookup failed ({exc.strerror})")
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(f"connecting to {name} timed out")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"connection to {name} refused")
    text = str(exc)
    if proxy is not None and text.startswith("Tunnel connection failed"):
        status = text.removeprefix("Tunnel connection failed:").strip()
        return ConnectError(f"CONNECT to {host}:{port} through {name}: the proxy answered {status}")
    if isinstance(exc, OSError):
        return ConnectError(f"cannot connect to {name}: {exc.strerror or exc}")
    return ConnectError(f"cannot connect to {name}: {exc!r}")


def tls_context(verify: bool | str, cert: tuple[str, str] | None) -> Any:
    """The ``ssl.SSLContext`` for ``verify`` (True, a CA file or directory, or False) and an
    optional client certificate; ``TLSError`` if a file cannot be loaded."""
    import ssl

    if verify is False:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str):
        try:
            if os.path.isdir(verify):
                context = ssl.create_default_context(capath=verify)
            else:
                context = ssl.create_default_context(cafile=verify)
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load the CA certificates in {verify}: {exc}") from exc
    else:
        context = ssl.create_default_context()  # OpenSSL honours SSL_CERT_FILE/SSL_CERT_DIR
    if cert is not None:
        try:
            context.load_cert_chain(cert[0], cert[1])
        except (OSError, ssl.SSLError) as exc:
            raise TLSError(f"cannot load the client certificate {cert[0]}: {exc}") from exc
    return context
