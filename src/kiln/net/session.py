"""``Session``: HTTP requests over the standard library's ``http.client``, pooled and proxied.

Why ``http.client`` and not ``urllib3``/``requests``: it does the HTTP/1.1 framing (chunked
bodies both ways, keep-alive, ``CONNECT`` tunnels via ``set_tunnel``) and costs about 17 ms of
imports against urllib3's 45 ms, paid only on the first request (it is imported lazily, so a
build that never touches the network never loads it). What stays kiln's own is policy: a
keep-alive pool per (scheme, host, port, proxy) shared by threads, proxies chosen from
``*_PROXY``/``NO_PROXY`` (loopback never proxied, see ``kiln.net.proxy``), separate connect and
read timeouts, failures named as ``kiln.errors`` network classes, and redirects, followed here
and nowhere else, never carrying ``Authorization`` to another host.
"""

from __future__ import annotations

import base64
import io
import select
import threading
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, unquote, urljoin, urlsplit

from kiln.closeable import Closeable
from kiln.errors import ConnectionLost, InvalidURL, TooManyRedirects
from kiln.net.connect import connect, tls_context
from kiln.net.proxy import Proxy, proxy_for
from kiln.net.response import Response, exchange_error

if TYPE_CHECKING:
    import http.client

#: A request body: bytes, or a function opening a fresh stream (so the body can be sent
#: again after a redirect or on a fresh connection).
Body = bytes | Callable[[], BinaryIO] | None
Timeouts = float | tuple[float, float]

DEFAULT_TIMEOUT = (15.0, 120.0)  # (connect, read) seconds
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAFE_URL_CHARS = "!#$%&'()*+,/:;=?@[]~"  # requoting keeps escapes and reserved characters
_NO_BODY_STATUS = frozenset({204, 304})


@dataclass(frozen=True)
class _Key:
    """Which connections are interchangeable: same target through the same proxy."""

    scheme: str
    host: str
    port: int
    proxy: Proxy | None


class Session(Closeable):
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
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._tls: Any = None
        self._closed = False
        # A session dropped without close() still closes its idle sockets when collected.
        weakref.finalize(self, _close_idle, self._idle, self._lock)

    def __repr__(self) -> str:
        return f"Session(verify={self.verify!r})"

    def close(self) -> None:
        """Close every idle connection; connections in use close when their response does."""
        with self._lock:
            self._closed = True
        _close_idle(self._idle, self._lock)

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        timeout: Timeouts | None = None,
        follow_redirects: bool = False,
    ) -> Response:
        """Send one request; the response's body is read now unless ``stream``.

        With ``follow_redirects``, up to ``MAX_REDIRECTS`` redirects are followed: 303 (and
        301/302 after a POST) become a GET without body, 307/308 repeat the request (the body
        opener is called again), and ``Authorization`` is dropped once the target is another
        host, port or scheme (an upgrade from http to https on the default ports excepted).
        """
        request_headers = {name.lower(): (name, value) for name, value in (headers or {}).items()}
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, request_headers, body, stream, timeout)
            location = response.headers.get("Location")
            if not follow_redirects or response.status_code not in _REDIRECTS or not location:
                return response
            status = response.status_code
            response.close()
            new_url = urljoin(url, location)
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, body = "GET", None
                for name in ("content-length", "content-type", "transfer-encoding"):
                    request_headers.pop(name, None)
            if _leaves_origin(url, new_url):
                request_headers.pop("authorization", None)
            url = new_url
        raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {_host_of(url)}")

    def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, tuple[str, str]],
        body: Body,
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
        key = _Key(scheme, host, port, proxy)
        target = quote(parts.path or "/", safe=_SAFE_URL_CHARS)
        if parts.query:
            target += "?" + quote(parts.query, safe=_SAFE_URL_CHARS)
        if proxy is not None and scheme == "http":
            authority = f"[{host}]" if ":" in host else host
            authority += f":{port}" if port != 80 else ""
            target = f"http://{authority}{target}"  # the absolute form a proxy needs
        all_headers = self._headers(parts, headers, proxy if scheme == "http" else None)
        connect_timeout, read_timeout = _timeouts(self.timeout if timeout is None else timeout)
        what = f"{method} to {host}"
        while True:
            connection = self._checkout(key)
            reused = connection is not None
            if connection is None:
                connection = connect(key.scheme, host, port, proxy, connect_timeout, self._tls_for)
            payload = body() if callable(body) else body
            try:
                connection.sock.settimeout(read_timeout)
                connection.request(method, target, payload, all_headers)
                raw = connection.getresponse()
            except Exception as exc:
                connection.close()
                error = exchange_error(exc, what, tls_fatal=True)
                if error is None:
                    raise
                if reused and isinstance(error, ConnectionLost):
                    continue  # the server closed the idle connection as we reused it
                raise error from exc
            except BaseException:
                connection.close()
                raise
            finally:
                if payload is not None and not isinstance(payload, bytes):
                    payload.close()
            response = self._wrap(raw, connection, key, method, url, what)
            if stream:
                return response
            with response:
                content = response.content
            return Response(
                raw.status, raw.reason, raw.headers, url, io.BytesIO(content), length=len(content)
            )

    def _headers(
        self, parts: Any, headers: dict[str, tuple[str, str]], proxy: Proxy | None
    ) -> dict[str, str]:
        """Defaults, credentials from the URL, a plain-HTTP proxy's credentials, then ours."""
        lines = {"user-agent": ("User-Agent", self.user_agent), "accept": ("Accept", "*/*")}
        if parts.username is not None and "authorization" not in headers:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            lines["authorization"] = ("Authorization", "Basic " + base64.b64encode(pair).decode())
        if proxy is not None and proxy.authorization:
            lines["proxy-authorization"] = ("Proxy-Authorization", proxy.authorization)
        lines.update(headers)
        return dict(lines.values())

    def _wrap(
        self,
        raw: http.client.HTTPResponse,
        connection: http.client.HTTPConnection,
        key: _Key,
        method: str,
        url: str,
        what: str,
    ) -> Response:
        length: int | None = None
        if method == "HEAD" or raw.status in _NO_BODY_STATUS:
            length = 0
        elif not raw.chunked and raw.length is not None:
            length = raw.length

        def release(reusable: bool) -> None:
            if reusable and length == 0:
                raw.read()  # nothing to read: this only marks the answer as finished
            if reusable and raw.isclosed():
                self._checkin(key, connection)
            else:
                raw.close()
                connection.close()

        return Response(
            raw.status, raw.reason, raw.headers, url, raw, length=length, release=release, what=what
        )

    def _checkout(self, key: _Key) -> http.client.HTTPConnection | None:
        with self._lock:
            idle = self._idle.get(key)
            while idle:
                connection = idle.pop()
                if _idle_and_open(connection):
                    return connection
                connection.close()
        return None

    def _checkin(self, key: _Key, connection: http.client.HTTPConnection) -> None:
        if connection.sock is None:  # the server asked to close it
            return
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < self._max_idle:
                idle.append(connection)
                return
        connection.close()

    def _tls_for(self) -> Any:
        with self._lock:
            if self._tls is None:
                self._tls = tls_context(self.verify, self.cert)
            return self._tls


def _close_idle(idle: dict[_Key, list[http.client.HTTPConnection]], lock: threading.Lock) -> None:
    with lock:
        connections = [connection for group in idle.values() for connection in group]
        idle.clear()
    for connection in connections:
        connection.close()


def _idle_and_open(connection: http.client.HTTPConnection) -> bool:
    """True if nothing arrived while it was idle (no EOF, no stray bytes): reusable."""
    sock: Any = connection.sock
    if sock is None or (hasattr(sock, "pending") and sock.pending()):
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _timeouts(timeout: Timeouts) -> tuple[float, float]:
    return timeout if isinstance(timeout, tuple) else (timeout, timeout)


def _host_of(url: str) -> str:
    return urlsplit(url).hostname or "?"


def _leaves_origin(old: str, new: str) -> bool:
    """Whether a redirect from ``old`` to ``new`` must drop ``Authorization``: another host,
    port or scheme, except an upgrade from http to https on the default ports."""
    before, after = urlsplit(old), urlsplit(new)
    if before.hostname != after.hostname:
        return True
    if (before.scheme, after.scheme) == ("http", "https") and before.port in (None, 80):
        return after.port not in (None, 443)
    return before.scheme != after.scheme or before.port != after.port


def safe_url(url: str) -> str:
    """``url`` without credentials or query string, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


__all__ = ["DEFAULT_TIMEOUT", "Body", "Session", "safe_url"]
