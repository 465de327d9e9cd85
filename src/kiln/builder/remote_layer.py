"""A layer whose blob is still in a registry: fetched only when something opens it.

Why: a build whose steps all hit the cache needs its layers' digests and diff IDs, not their
bytes. The image's manifest names the blobs; a push sends them registry to registry (a mount,
or a stream); nothing is unpacked. So a base image's layers and the registry cache's layers
stay where they are until a step needs the files (then they are downloaded into the blob
store, verified, and unpacked as usual) or an output needs the bytes (a tarball, an OCI
layout, a push to another registry: then they are streamed, and verified as they pass).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

from kiln.builder.cancel import in_this_build
from kiln.builder.registries import TRANSFER_THREADS, RegistryPool
from kiln.fs import BlobStore, open_layer
from kiln.image import Layer

log = logging.getLogger("kiln")


@dataclass(frozen=True)
class RemoteLayer:
    """A layer at ``registry``/``repository`` (blob ``digest``), read from ``store`` once it is
    there. Layers compare by what they are, not where they are read from."""

    digest: str
    diff_id: str
    size: int
    media_type: str
    registry: str
    repository: str
    pool: RegistryPool = field(compare=False, repr=False)
    store: BlobStore = field(compare=False, repr=False)

    @property
    def fetched(self) -> bool:
        """Whether the blob is in the local store (downloaded, or there already)."""
        return self.store.has(self.digest)

    def fetch(self) -> None:
        """Download the blob into the store (verified while it streams), unless it is there."""
        if self.fetched:
            return
        client = self.pool.client(self.registry, push=False)
        log.info("Pulling blob %s", self.digest)
        tmp = self.store.root / (
            f".download-{os.getpid()}-{threading.get_ident()}-{self.digest.partition(':')[2]}"
        )
        try:
            with tmp.open("wb") as out:
                client.fetch_blob(self.repository, self.digest, out)
            self.store.add_file(tmp, self.digest)
        finally:
            tmp.unlink(missing_ok=True)

    def open_compressed(self) -> BinaryIO:
        """The blob: from the store when it is there, else streamed from the registry."""
        if self.fetched:
            return self.store.open(self.digest)
        return stream_blob(self.pool, self.registry, self.repository, self.digest)

    def open_uncompressed(self) -> BinaryIO:
        """The layer's tar, after fetching the blob (unpacking wants the fast local path)."""
        self.fetch()
        return open_layer(self.store.path(self.digest))


def fetch_layers(layers: Sequence[Layer]) -> None:
    """Download every remote layer of ``layers`` not stored yet, several at once."""
    missing = [layer for layer in layers if isinstance(layer, RemoteLayer) and not layer.fetched]
    if not missing:
        return
    unique = list({layer.digest: layer for layer in missing}.values())
    with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as threads:
        list(threads.map(in_this_build(RemoteLayer.fetch), unique))


def mount_source(layer: Layer, registry: str) -> str | None:
    """The repository on ``registry`` the blob of ``layer`` may be mounted from, if any."""
    if isinstance(layer, RemoteLayer) and layer.registry == registry:
        return layer.repository
    return None


def blob_opener(layer: Layer) -> Callable[[], BinaryIO]:
    """What an upload of ``layer``'s blob opens, once per request. A blob still in another
    registry is read through one stream, chunk after chunk (a chunked upload opens it again
    for every chunk, which must not download the blob again from its start each time)."""
    if isinstance(layer, RemoteLayer) and not layer.fetched:
        return _Sequential(layer.open_compressed, layer.size)
    return layer.open_compressed


def stream_blob(pool: RegistryPool, registry: str, repository: str, digest: str) -> BinaryIO:
    """Blob ``digest`` as a stream read while it downloads (a pipe fed by a thread): never held
    in memory or on disk. A wrong digest or a failed download raises from ``read`` at the end;
    closing early stops the download."""
    client = pool.client(registry, push=False)
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb")
    writer = os.fdopen(write_fd, "wb")
    stream = _PipeStream(reader)

    def feed() -> None:
        try:
            client.fetch_blob(repository, digest, _PipeWriter(writer))  # type: ignore[arg-type]
        except BaseException as exc:  # handed to the reader, which raises it
            stream.failure = exc
        finally:
            with contextlib.suppress(OSError):  # the reader went away first
                writer.close()

    stream.thread = threading.Thread(target=feed, name="kiln-blob-stream", daemon=True)
    stream.thread.start()
    return stream  # type: ignore[return-value]


class _Sequential:
    """An opener whose streams share one underlying stream while they read it in order: each
    is seeked to where its request starts; a seek backwards (a chunk sent again) opens a new
    one. The shared stream is closed once read to the end, or replaced."""

    def __init__(self, open_stream: Callable[[], BinaryIO], size: int) -> None:
        self._open = open_stream
        self._size = size
        self._stream: BinaryIO | None = None
        self._lock = threading.Lock()

    def __call__(self) -> BinaryIO:
        return _Borrowed(self)  # type: ignore[return-value]

    def at(self, offset: int) -> BinaryIO:
        """The shared stream, positioned at ``offset``."""
        with self._lock:
            if self._stream is None or self._stream.tell() > offset:
                if self._stream is not None:
                    self._stream.close()
                self._stream = self._open()
            self._stream.seek(offset)
            return self._stream

    def release(self, stream: BinaryIO) -> None:
        """A borrower is done: the shared stream closes if it was read to its end."""
        with self._lock:
            if stream is self._stream and stream.tell() >= self._size:
                stream.close()
                self._stream = None


class _Borrowed:
    """One request's view of a ``_Sequential`` stream."""

    def __init__(self, owner: _Sequential) -> None:
        self._owner = owner
        self._stream: BinaryIO | None = None

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0:
            raise OSError("a streamed blob only seeks from its start")
        self._stream = self._owner.at(offset)
        return offset

    def read(self, size: int = -1) -> bytes:
        if self._stream is None:
            self.seek(0)
        assert self._stream is not None
        return self._stream.read(size)

    def close(self) -> None:
        if self._stream is not None:
            self._owner.release(self._stream)
            self._stream = None

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ReaderGone(BaseException):
    """The reader of a ``stream_blob`` closed it: the download stops (no retry)."""


class _PipeWriter:
    """The write end of ``stream_blob``'s pipe, ending the download once nobody reads."""

    def __init__(self, writer: BinaryIO) -> None:
        self._writer = writer

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("a pipe has no position")

    def write(self, data: bytes) -> int:
        try:
            return self._writer.write(data)
        except (BrokenPipeError, ValueError) as exc:
            raise _ReaderGone() from exc


class _PipeStream:
    """The read end of ``stream_blob``: reads, forward seeks (a chunked upload's window skips
    what earlier chunks sent), and the download's error at the end."""

    def __init__(self, reader: BinaryIO) -> None:
        self._reader = reader
        self._position = 0
        self.failure: BaseException | None = None
        self.thread: threading.Thread | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset < self._position:
            raise OSError("a streamed blob only seeks forward")
        while self._position < offset:
            if not self.read(min(1 << 20, offset - self._position)):
                break
        return self._position

    def read(self, size: int = -1) -> bytes:
        data = self._reader.read(size)
        self._position += len(data)
        if not data or (size is not None and size < 0):
            self._ended()
        return data

    def _ended(self) -> None:
        if self.thread is not None:
            self.thread.join()
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        self._reader.close()

    def __enter__(self) -> _PipeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
