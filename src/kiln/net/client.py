"""``Client``: HTTP/1.1 requests with a keep-alive pool, TLS, proxies and redirects.

Why kiln has its own: ``requests`` (with ``urllib3``) cost about 50 ms of imports at every kiln
start, a quarter of a small rebuild. kiln needs a small, well-defined part of it: a connection
pool per (scheme, host, port) shared by threads, HTTPS verified against the system CAs (or a
given CA file, or not at all) with optional client certificates, proxies from the environment
(``CONNECT`` tunnels for HTTPS), streamed bodies both ways, and, for plain downloads, redirects
that never carry ``Authorization`` to another host. ``ssl`` is imported only for the first
HTTPS connection, so plain-HTTP use never pays for it.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import socket
import stat
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urljoin, urlsplit

from kiln.net.errors import (
    ConnectError,
    ConnectionLost,
    ConnectTimeout,
    InvalidURL,
    NameNotFound,
    NetError,
    TLSError,
    TooManyRedirects,
)
from kiln.net.proxy import Proxy, proxy_for
from kiln.net.wire import (
    Body,
    BytesBody,
    ChunkedBody,
    EmptyBody,
    Headers,
    LengthBody,
    Reader,
    Response,
    UntilCloseBody,
    io_error,
    read_head,
)

#: What a request body may be: bytes, a readable stream (sent as it is read), or chunks.
RequestBody = bytes | BinaryIO | Iterable[bytes] | None
Timeouts = float | tuple[float, float]

DEFAULT_TIMEOUT = (15.0, 120.0)  # (connect, read) seconds
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_SEND_BLOCK = 256 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_URL_CHARS = "!#$%&'()*+,/:;=?@[]~"  # requests' requoting: keep escapes, reserved chars


@dataclass(frozen=True)
class _Key:
    """Which connections are interchangeable: same target (or same plain-HTTP proxy)."""

    scheme: str
    host: str
    port: int
    proxy: Proxy | None


class _Connection:
    def __init__(self, sock: Any, key: _Key) -> None:
        self.sock = sock
        self.key = key
        self.reader = Reader(sock)

    def idle_and_open(self) -> bool:
        """True if nothing arrived while it was idle (no EOF, no stray bytes): reusable."""
        if self.reader.buffered or (hasattr(self.sock, "pending") and self.sock.pending()):
            return False
        try:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Client:
    """An HTTP client with a thread-safe keep-alive pool; ``close()`` (or ``with``) releases it.

    ``verify`` is True (system CAs, ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured), a CA file or
    directory, or False (no verification). ``cert`` is a (certificate, key) pair for mutual
    TLS. ``environ`` replaces ``os.environ`` for proxy settings (tests).
    """

    def __init__(
        self,
        *,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        user_agent: str = "kiln/0.1",
        timeout: Timeouts = DEFAULT_TIMEOUT,
        max_idle: int = 10,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.verify = verify
        self.cert = cert
        self.user_agent = user_agent
        self.timeout = timeout
        self._max_idle = max_idle
        self._environ = environ
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[_Connection]] = {}
        self._tls: Any = None
        self._closed = False
        # A client dropped without close() still closes its idle sockets when collected.
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    def __repr__(self) -> str:
        return f"Client(verify={self.verify!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their response does."""
        with self._lock:
            self._closed = True
        _close_idle(self._idle, self._lock)

    # ------------------------------------------------------------------ requests

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: RequestBody = None,
        stream: bool = False,
        timeout: Timeouts | None = None,
        follow_redirects: bool = False,
    ) -> Response:
        """Send one request; the response's body is read now unless ``stream``.

        With ``follow_redirects`` (GET and HEAD callers), up to ``MAX_REDIRECTS`` redirects are
        followed: 303 (and 301/302 after a POST) become a GET without body, 307/308 repeat
        the request as it was (a streamed body cannot be repeated: the redirect is returned),
        and ``Authorization`` is dropped once the target is another host.
        """
        request_headers = Headers(headers or {})
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, request_headers, body, stream, timeout)
            location = response.headers.get("Location")
            if not follow_redirects or response.status_code not in _REDIRECTS or not location:
                return response
            status = response.status_code
            if status in (307, 308) and not isinstance(body, bytes | None):
                return response
            response.close()
            new_url = urljoin(url, location)
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
                for name in ("Content-Length", "Content-Type", "Transfer-Encoding"):
                    request_headers.pop(name, None)
            if _strip_auth(url, new_url):
                request_headers.pop("Authorization", None)
            url = new_url
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {_host_of(url)}")

    def _send(
        self,
        method: str,
        url: str,
        headers: Headers,
        body: RequestBody,
        stream: bool,
        timeout: Timeouts | None,
    ) -> Response:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise InvalidURL(f"cannot request {scheme or '(no scheme)'}://{parts.hostname or ''}")
        host = parts.hostname
        try:
            port = parts.port or _DEFAULT_PORTS[scheme]
        except ValueError:
            raise InvalidURL(f"invalid port in a URL for {host}") from None
        proxy = proxy_for(url, self._environ)
        key = _Key(scheme, host, port, proxy if scheme == "https" else None)
        if proxy is not None and scheme == "http":
            key = _Key("http", proxy.host, proxy.port, proxy)
        head = self._head(method, parts, host, port, headers, body, proxy)
        replayable = isinstance(body, bytes | None)
        connect, read = _timeouts(self.timeout if timeout is None else timeout)
        what = f"{method} to {host}"
        while True:
            connection = self._checkout(key)
            reused = connection is not None
            if connection is None:
                connection = self._connect(key, host, port, connect)
            connection.sock.settimeout(read)
            try:
                response = self._exchange(connection, method, url, head, body, what)
            except ConnectionLost:
                connection.close()
                if reused and replayable:
                    continue  # the server closed the idle connection as we reused it
                raise
            except BaseException:
                connection.close()
                raise
            if stream:
                return response
            try:
                content = response.content
            finally:
                response.close()
            return Response(
                response.status_code, response.reason, response.headers, url, BytesBody(content)
            )

    def _head(
        self,
        method: str,
        parts: Any,
        host: str,
        port: int,
        headers: Headers,
        body: RequestBody,
        proxy: Proxy | None,
    ) -> bytes:
        """The request line and headers, with ``Host``, framing and defaults filled in."""
        scheme = parts.scheme.lower()
        target = quote(parts.path or "/", safe=_SAFE_URL_CHARS)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE_URL_CHARS)
        authority = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            authority += f":{port}"
        if proxy is not None and scheme == "http":
            target = f"http://{authority}{target}"  # absolute form for a forward proxy
        lines = {
            "host": ("Host", authority),
            "user-agent": ("User-Agent", self.user_agent),
            "accept-encoding": ("Accept-Encoding", "identity"),
            "accept": ("Accept", "*/*"),
        }
        if parts.username is not None and "authorization" not in {h.lower() for h in headers}:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            lines["authorization"] = ("Authorization", "Basic " + base64.b64encode(pair).decode())
        if proxy is not None and scheme == "http" and proxy.authorization:
            lines["proxy-authorization"] = ("Proxy-Authorization", proxy.authorization)
        for name, value in headers.items():
            lines[name.lower()] = (name, value)
        if "content-length" not in lines and "transfer-encoding" not in lines:
            length = _body_length(body)
            if length is not None:
                if length or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
                    lines["content-length"] = ("Content-Length", str(length))
            else:
                lines["transfer-encoding"] = ("Transfer-Encoding", "chunked")
        text = [f"{method} {target} HTTP/1.1"]
        for name, value in lines.values():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
                raise InvalidURL(f"header {name} contains a line break")
            text.append(f"{name}: {value}")
        return ("\r\n".join(text) + "\r\n\r\n").encode("latin-1")

    def _exchange(
        self,
        connection: _Connection,
        method: str,
        url: str,
        head: bytes,
        body: RequestBody,
        what: str,
    ) -> Response:
        sock = connection.sock
        chunked = b"Transfer-Encoding: chunked\r\n" in head
        complete = True
        try:
            if isinstance(body, bytes) and len(body) <= _SEND_BLOCK:
                sock.sendall(head + body)
            else:
                sock.sendall(head)
                if body is not None:
                    _send_body(sock, body, chunked)
        except OSError as exc:
            error = io_error(exc, f"{what}: sending the request", tls_fatal=True)
            if not isinstance(error, ConnectionLost):
                raise error from exc
            complete = False  # the server may have answered early and closed: read it
            try:
                version, status, reason, headers = read_head(connection.reader, what)
            except OSError:
                raise error from exc
        else:
            try:
                version, status, reason, headers = read_head(connection.reader, what)
            except OSError as exc:
                raise io_error(exc, what, tls_fatal=True) from exc
        response_body, reusable = _framing(
            connection.reader, method, status, headers, version, what
        )

        def release(done: bool) -> None:
            if done and reusable and complete:
                self._checkin(connection)
            else:
                connection.close()

        return Response(status, reason, headers, url, response_body, release, what=what)

    # ------------------------------------------------------------------ connections

    def _checkout(self, key: _Key) -> _Connection | None:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                connection = idle.pop()
                if connection.idle_and_open():
                    return connection
                connection.close()
        return None

    def _checkin(self, connection: _Connection) -> None:
        with self._lock:
            idle = self._idle.setdefault(connection.key, [])
            if not self._closed and len(idle) < self._max_idle:
                idle.append(connection)
                return
        connection.close()

    def _connect(self, key: _Key, host: str, port: int, timeout: float) -> _Connection:
        proxy = key.proxy
        address = (proxy.host, proxy.port) if proxy is not None else (host, port)
        try:
            sock = socket.create_connection(address, timeout=timeout)
        except OSError as exc:
            raise connect_error(exc, address[0], address[1], proxy is not None) from exc
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if key.scheme == "https":
                if proxy is not None:
                    _tunnel(sock, host, port, proxy, self.user_agent)
                sock = self._wrap(sock, host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock, key)

    def _wrap(self, sock: socket.socket, host: str) -> Any:
        """The TLS handshake, verifying ``host`` as configured."""
        context = self._tls_context()
        try:
            return context.wrap_socket(sock, server_hostname=host)
        except TimeoutError as exc:
            raise ConnectTimeout(f"TLS handshake with {host} timed out") from exc
        except OSError as exc:
            error = io_error(exc, f"TLS handshake with {host}", tls_fatal=True)
            if isinstance(error, TLSError):
                raise error from exc
            raise ConnectError(str(error)) from exc

    def _tls_context(self) -> Any:
        with self._lock:
            if self._tls is None:
                self._tls = _make_tls_context(self.verify, self.cert)
            return self._tls


#: getaddrinfo answers meaning the name has no address at all: waiting will not change that.
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


def connect_error(exc: OSError, host: str, port: int, proxy: bool) -> NetError:
    """Name why a connection to ``host:port`` failed: DNS, refused, timed out, or the OS's
    reason; ``proxy`` says the address is the proxy's (from ``*_PROXY``), not the target's."""
    name = f"{host}:{port}"
    if proxy:
        name = f"the proxy {name} (from the *_PROXY environment)"
    if isinstance(exc, socket.gaierror):
        looked_up = f"the proxy {host}" if proxy else host
        if exc.errno in _NO_SUCH_NAME:
            return NameNotFound(f"cannot resolve {looked_up}: DNS says the name does not exist")
        return ConnectError(f"cannot resolve {looked_up}: DNS lookup failed ({exc.strerror})")
    if isinstance(exc, TimeoutError):
        return ConnectTimeout(f"connecting to {name} timed out")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectError(f"connection to {name} refused")
    return ConnectError(f"cannot connect to {name}: {exc.strerror or exc}")


def _close_idle(idle: dict[_Key, list[_Connection]], lock: threading.Lock) -> None:
    with lock:
        connections = [connection for group in idle.values() for connection in group]
        idle.clear()
    for connection in connections:
        connection.close()


def _make_tls_context(verify: bool | str, cert: tuple[str, str] | None) -> Any:
    import ssl  # only HTTPS needs it (about 6 ms of imports)

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


def _tunnel(sock: socket.socket, host: str, port: int, proxy: Proxy, user_agent: str) -> None:
    """Ask an HTTP proxy for a ``CONNECT`` tunnel to ``host:port``."""
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}", f"User-Agent: {user_agent}"]
    if proxy.authorization:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    what = f"CONNECT to {authority} through the proxy {proxy.host}:{proxy.port}"
    reader = Reader(sock)
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        _, status, _, _ = read_head(reader, what)
    except TimeoutError as exc:
        raise ConnectTimeout(f"{what}: timed out") from exc
    except OSError as exc:
        raise ConnectError(str(io_error(exc, what))) from exc
    if status != 200:
        raise ConnectError(f"{what}: the proxy answered HTTP {status}")
    if reader.buffered:
        raise ConnectError(f"{what}: the proxy sent bytes before the tunnel was up")


def _framing(
    reader: Reader, method: str, status: int, headers: Headers, version: str, what: str
) -> tuple[Body, bool]:
    """How the body ends, and whether the connection may be reused after it."""
    tokens = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    reusable = "keep-alive" in tokens if version == "HTTP/1.0" else "close" not in tokens
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return EmptyBody(), reusable
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return ChunkedBody(reader, what), reusable
    length = headers.get("Content-Length")
    if length is not None:
        values = {value.strip() for value in length.split(",")}
        if len(values) != 1 or not next(iter(values)).isdigit():
            raise ConnectionLost(f"{what}: invalid Content-Length")
        return LengthBody(reader, int(values.pop()), what), reusable
    return UntilCloseBody(reader), False


def _body_length(body: RequestBody) -> int | None:
    """The body's length when known without reading it (else it goes chunked)."""
    if body is None:
        return 0
    if isinstance(body, bytes):
        return len(body)
    stream: Any = body
    if not hasattr(stream, "read"):
        return None  # an iterable of chunks: its length is unknown until sent
    if hasattr(stream, "__len__"):
        return len(stream)
    fileno = getattr(stream, "fileno", None)
    if fileno is not None and hasattr(stream, "tell"):
        try:
            info = os.fstat(fileno())
            if stat.S_ISREG(info.st_mode):
                return max(0, info.st_size - int(stream.tell()))
        except (OSError, ValueError):
            return None
    return None


def _send_body(sock: Any, body: RequestBody, chunked: bool) -> None:
    if isinstance(body, bytes):
        sock.sendall(body)
        return
    if hasattr(body, "read"):
        reader: Any = body

        def blocks() -> Iterable[bytes]:
            while data := reader.read(_SEND_BLOCK):
                yield data

        pieces: Iterable[bytes] = blocks()
    else:
        assert body is not None
        pieces = body
    for piece in pieces:
        if not piece:
            continue
        if chunked:
            sock.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
        else:
            sock.sendall(piece)
    if chunked:
        sock.sendall(b"0\r\n\r\n")


def _timeouts(timeout: Timeouts) -> tuple[float, float]:
    if isinstance(timeout, tuple):
        return timeout
    return timeout, timeout


def _host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _strip_auth(old: str, new: str) -> bool:
    """requests' rule: keep ``Authorization`` only on the same host, port and scheme (an
    http-to-https upgrade on default ports counts as the same)."""
    before, after = urlsplit(old), urlsplit(new)
    if before.hostname != after.hostname:
        return True
    if (
        (before.scheme, after.scheme) == ("http", "https")
        and before.port in (None, 80)
        and (after.port in (None, 443))
    ):
        return False
    return before.scheme != after.scheme or before.port != after.port


def safe_url(url: str) -> str:
    """``url`` without credentials or query string, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


__all__ = ["DEFAULT_TIMEOUT", "Client", "NetError", "RequestBody", "Response", "safe_url"]
