"""HTTP/1.1 on a socket: reading status lines, headers and bodies; the ``Response`` object.

Why not ``http.client``: it imports ``ssl`` and ``email`` (about 12 ms at every kiln start),
while kiln needs only a strict subset of HTTP/1.1 (no trailers, no upgrades, no encodings) and
must control exactly when a connection may go back to the pool: only after its response body
was read to the end of its framing (``Content-Length`` or the last chunk). Network failures
surface as ``kiln.net.errors`` classes (a body cut short is ``TruncatedBody``), whatever the
socket or TLS layer raised.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from types import TracebackType
from typing import Any, Protocol

from kiln.net.errors import (
    ConnectionLost,
    NetError,
    ProtocolError,
    Timeout,
    TLSError,
    TruncatedBody,
)

_MAX_LINE = 64 * 1024
_MAX_HEADERS = 200
_DRAIN_LIMIT = 64 * 1024  # a response closed with at most this much body left is read out
_FILL = 64 * 1024  # reads of at least this size are filled (fewer, larger chunks)


def io_error(exc: OSError, what: str, *, tls_fatal: bool = False) -> NetError:
    """Map a socket-level failure to the client's classes; ``what`` names the step and host.

    ``tls_fatal``: a TLS error here is a TLS problem (handshake, the server refusing our client
    certificate in its first answer), not a connection broken in passing.
    """
    if isinstance(exc, NetError):
        return exc
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLError) and tls_fatal:
        return TLSError(f"{what}: {exc}")
    if isinstance(exc, TimeoutError):
        return Timeout(f"{what}: timed out")
    return ConnectionLost(f"{what}: {exc.strerror or exc}")


class Headers(MutableMapping[str, str]):
    """Case-insensitive header mapping that keeps the names' spelling (repeated response
    headers are joined with ``", "``, as HTTP allows for list-valued headers)."""

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items: dict[str, tuple[str, str]] = {}
        pairs = items.items() if isinstance(items, Mapping) else items
        for name, value in pairs:
            self[name] = value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __setitem__(self, name: str, value: str) -> None:
        self._items[name.lower()] = (name, value)

    def __delitem__(self, name: str) -> None:
        del self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def add(self, name: str, value: str) -> None:
        """Append a value: a repeated header becomes one comma-joined value."""
        old = self._items.get(name.lower())
        self[name] = value if old is None else f"{old[1]}, {value}"

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)})"  # names only: values may be credentials


class Reader:
    """Buffered reads from a socket with the line and exact-size reads HTTP parsing needs."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._buffer = bytearray()

    @property
    def buffered(self) -> int:
        """Bytes received but not consumed yet."""
        return len(self._buffer)

    def _recv(self, size: int) -> bytes:
        return bytes(self._sock.recv(size))

    def readline(self) -> bytes:
        """One line including its ``\\n`` (or what came before EOF)."""
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > _MAX_LINE:
                raise ProtocolError("a header or chunk line is too long")
            data = self._recv(_FILL)
            if not data:
                line = bytes(self._buffer)
                self._buffer.clear()
                return line
            self._buffer += data

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes (b"" only at EOF); large reads wait for ``size`` bytes or EOF."""
        if self._buffer:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            return data
        if size < _FILL:
            return self._recv(size)
        chunks: list[bytes] = []
        got = 0
        while got < size:
            data = self._recv(min(size - got, 1 << 20))
            if not data:
                break
            chunks.append(data)
            got += len(data)
        return b"".join(chunks)


def read_head(reader: Reader, what: str) -> tuple[str, int, str, Headers]:
    """Status line and headers: (version, status, reason, headers); 1xx answers skipped."""
    while True:
        line = reader.readline()
        if not line:
            raise ConnectionLost(f"{what}: the server closed the connection without answering")
        parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"{what}: not an HTTP/1.x status line")
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = _read_headers(reader, what)
        if 100 <= status < 200 and status != 101:
            continue  # 100 Continue and friends: the real answer follows
        return version, status, reason, headers


def _read_headers(reader: Reader, what: str) -> Headers:
    headers = Headers()
    last: str | None = None
    for _ in range(_MAX_HEADERS):
        raw = reader.readline()
        if not raw.endswith(b"\n"):
            raise TruncatedBody(f"{what}: the connection closed inside the headers")
        line = raw.decode("latin-1").rstrip("\r\n")
        if not line:
            return headers
        if line[0] in " \t" and last is not None:  # obsolete line folding
            headers[last] = f"{headers[last]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ProtocolError(f"{what}: malformed header line")
        headers.add(name, value.strip())
        last = name
    raise ProtocolError(f"{what}: too many headers")


class Body(Protocol):
    """A response body: ``read(n)`` returns b"" at its end; ``complete`` once there."""

    complete: bool

    def read(self, size: int) -> bytes: ...

    def remaining(self) -> int | None: ...


class EmptyBody:
    """No body (HEAD, 204, 304)."""

    complete = True

    def read(self, size: int) -> bytes:
        return b""

    def remaining(self) -> int | None:
        return 0


class LengthBody:
    """A body framed by ``Content-Length``."""

    def __init__(self, reader: Reader, length: int, what: str) -> None:
        self._reader = reader
        self._left = length
        self._what = what
        self.complete = length == 0

    def read(self, size: int) -> bytes:
        if self._left <= 0:
            self.complete = True
            return b""
        data = self._reader.read(min(size, self._left))
        if not data:
            raise TruncatedBody(f"{self._what}: the body ended {self._left} bytes early")
        self._left -= len(data)
        self.complete = self._left == 0
        return data

    def remaining(self) -> int | None:
        return self._left


class ChunkedBody:
    """A body in chunked transfer encoding (trailers are read and ignored)."""

    def __init__(self, reader: Reader, what: str) -> None:
        self._reader = reader
        self._what = what
        self._left = 0  # bytes left in the current chunk
        self.complete = False

    def read(self, size: int) -> bytes:
        if self.complete:
            return b""
        if self._left == 0:
            self._left = self._chunk_size()
            if self._left == 0:
                _read_headers(self._reader, self._what)  # trailers, up to the blank line
                self.complete = True
                return b""
        data = self._reader.read(min(size, self._left))
        if not data:
            raise TruncatedBody(f"{self._what}: the body ended inside a chunk")
        self._left -= len(data)
        if self._left == 0 and self._reader.readline() not in (b"\r\n", b"\n"):
            raise ProtocolError(f"{self._what}: a chunk does not end with CRLF")
        return data

    def _chunk_size(self) -> int:
        line = self._reader.readline()
        if not line.endswith(b"\n"):
            raise TruncatedBody(f"{self._what}: the body ended between chunks")
        text = line.split(b";", 1)[0].strip()
        try:
            return int(text, 16)
        except ValueError:
            raise ProtocolError(f"{self._what}: malformed chunk size") from None

    def remaining(self) -> int | None:
        return None


class UntilCloseBody:
    """A body without framing: it ends when the server closes the connection."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self.complete = False

    def read(self, size: int) -> bytes:
        data = self._reader.read(size) if not self.complete else b""
        self.complete = not data
        return data

    def remaining(self) -> int | None:
        return None


class BytesBody:
    """A body already in memory (non-streamed responses, tests)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self.complete = not data

    def read(self, size: int) -> bytes:
        chunk = bytes(self._data[:size])
        self._data = self._data[size:]
        self.complete = not self._data
        return chunk

    def remaining(self) -> int | None:
        return len(self._data)


class Response:
    """One HTTP response. Streamed bodies hold their connection until read to the end or
    closed; use it as a context manager. ``release(reusable)`` is called exactly once."""

    def __init__(
        self,
        status_code: int,
        reason: str,
        headers: Headers,
        url: str,
        body: Body,
        release: Callable[[bool], None] | None = None,
        *,
        what: str = "response",
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.headers = headers
        self.url = url
        self._body = body
        self._release = release
        self._what = what
        self._content: bytes | None = None
        if body.complete:
            self._finish(True)

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    @property
    def ok(self) -> bool:
        """True for statuses below 400."""
        return self.status_code < 400

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of the body (all of the rest if negative); b"" at the end."""
        if size < 0:
            return b"".join(self.iter_content(1 << 20))
        if self._content is not None:
            raise ValueError("the body was already read as .content")
        try:
            data = self._body.read(size)
        except OSError as exc:
            self._finish(False)
            raise io_error(exc, self._what) from exc
        except BaseException:
            self._finish(False)
            raise
        if self._body.complete:
            self._finish(True)
        return data

    def iter_content(self, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes, never all in memory."""
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        while True:
            data = self.read(chunk_size)
            if not data:
                return
            yield data

    @property
    def content(self) -> bytes:
        """The whole body (read once, then kept)."""
        if self._content is None:
            self._content = b"".join(self.iter_content(1 << 20))
        return self._content

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        import json

        return json.loads(self.content)

    def close(self) -> None:
        """Release the connection: back to the pool if the body was (or cheaply can be) read
        to its end, else closed."""
        if self._release is None:
            return
        left = self._body.remaining()
        if left is not None and left <= _DRAIN_LIMIT:
            try:
                while self._body.read(_DRAIN_LIMIT):
                    pass
            except OSError:
                self._finish(False)
                return
            self._finish(self._body.complete)
            return
        self._finish(False)

    def _finish(self, reusable: bool) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(reusable)

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
