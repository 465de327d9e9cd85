"""A counting TCP relay in front of the registry: bytes each builder downloads and uploads.

Why a relay and not the registry's access log: the log gives response sizes (downloads) but not
request bodies (uploads), and Docker, buildah, Kaniko and kiln all reach a registry by host:port,
so pointing them at the relay's port counts every builder the same way, whatever its client.
The counts are raw TCP payload, so HTTP headers are included (a few hundred bytes a request).
"""

from __future__ import annotations

import contextlib
import socket
import threading

_CHUNK = 1 << 18


class CountingRelay:
    """Listens on ``host`` (``127.0.0.1:PORT``) and relays each connection to ``upstream``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.downloaded = 0  # registry -> clients
        self.uploaded = 0  # clients -> registry
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.downloaded = self.uploaded = 0

    def counts(self) -> tuple[int, int]:
        """(downloaded, uploaded) bytes since the last reset."""
        with self._lock:
            return self.downloaded, self.uploaded

    def close(self) -> None:
        self._listener.close()

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
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upload: bool) -> None:
        try:
            while data := source.recv(_CHUNK):
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
