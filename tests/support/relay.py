"""A TCP relay on loopback in front of a registry: counts the bytes each way, and can pass what
clients send on slowly (a slow uplink).

Why one relay for two jobs: the tests need a push caught *while* it uploads (an interrupted push
must not move a tag), which on loopback is over in moments unless uploads are throttled; the
benchmark needs the bytes every builder downloads and uploads, whatever its client, which a relay
in front of the registry's port counts the same way for all (raw TCP payload, headers included).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from kiln.closeable import Closeable

_CHUNK = 1 << 16


class Relay(Closeable):
    """Listens on ``host`` (``127.0.0.1:PORT``) and relays each connection to ``upstream``;
    with ``upload_rate`` (bytes per second) what clients send reaches the upstream that slowly,
    answers come back at full speed."""

    def __init__(self, upstream: str, upload_rate: int | None = None) -> None:
        self.upstream = upstream
        self.upload_rate = upload_rate
        self.downloaded = 0  # upstream -> clients
        self.uploaded = 0  # clients -> upstream, counted once it reached the upstream
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        """Start counting from zero."""
        with self._lock:
            self.downloaded = self.uploaded = 0

    def counts(self) -> tuple[int, int]:
        """(downloaded, uploaded) bytes since the last reset."""
        with self._lock:
            return self.downloaded, self.uploaded

    def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self) -> None:
        host, port = self.upstream.rsplit(":", 1)
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((host, int(port)))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        rate = self.upload_rate if upload else None
        try:
            while data := source.recv(_CHUNK if rate is None else min(_CHUNK, 16384)):
                if rate is not None:
                    time.sleep(len(data) / rate)
                sink.sendall(data)
                with self._lock:
                    if upload:
                        self.uploaded += len(data)
                    else:
                        self.downloaded += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                source.shutdown(socket.SHUT_RD)
