"""A TCP relay on loopback that passes what clients send on slowly: a slow uplink.

Why: a push must be caught *while* it uploads (an interrupted push must not move a tag), and
against a loopback registry an upload is over in moments. Through this relay every byte a client
sends reaches the registry at ``rate`` bytes per second; answers come back at full speed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from kiln.closeable import Closeable

_CHUNK = 16384


class ThrottledRelay(Closeable):
    """Listens on ``host`` (``127.0.0.1:PORT``) and relays each connection to ``upstream``."""

    def __init__(self, upstream: str, rate: int) -> None:
        self.upstream = upstream
        self.rate = rate
        self.relayed = 0  # bytes clients sent that reached the upstream so far
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

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
            server = socket.create_connection((host, int(port)))
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, throttled: bool) -> None:
        try:
            while data := source.recv(_CHUNK):
                if throttled:
                    time.sleep(len(data) / self.rate)
                sink.sendall(data)
                if throttled:
                    with self._lock:
                        self.relayed += len(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
