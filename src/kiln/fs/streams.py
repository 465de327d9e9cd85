"""Small byte-stream building blocks shared by the layer writer and the blob store.

Why: a layer is written once, in one pass, through a chain tar -> hash (diff_id) -> compress ->
hash (digest) -> file. Each link is a tiny object with ``write``/``close`` so the chain can be
assembled differently per compression without holding a layer in memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import struct
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

import zstandard
from zlib_ng import zlib_ng

from kiln.errors import LayerError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer


class Sink(Protocol):
    """Anything bytes can be pushed into; ``close`` flushes and finishes (not the final file)."""

    def write(self, data: bytes) -> int: ...

    def close(self) -> None: ...


class HashingWriter:
    """Forward bytes to ``sink`` while computing their sha256 and counting them."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def close(self) -> None:
        self._sink.close()

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of everything written so far."""
        return "sha256:" + self._hash.hexdigest()


class FileSink:
    """Write to an open binary file without closing it (the owner of the file closes it)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        self._file.write(data)
        return len(data)

    def close(self) -> None:
        self._file.flush()


def compression_threads() -> int:
    """How many threads compress a layer: every CPU this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


class _SinkFile(io.RawIOBase):
    """A ``Sink`` seen as a writable raw file, which is what the zstd stream writer expects."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, data: ReadableBuffer) -> int:
        view = memoryview(data)
        self._sink.write(view.tobytes())
        return view.nbytes


class GzipWriter:
    """Gzip on several threads, pigz's way; the output depends on the bytes and level only.

    The data is cut here into fixed ``BLOCK``-sized blocks; each is deflated on a worker thread
    (zlib-ng, which releases the GIL) with the previous 32 KiB as its dictionary and ends with a
    sync flush, and the blocks are written in order, followed by an empty final block and the
    combined CRC. Because the cuts do not depend on how callers called ``write`` or on the
    thread count, the same bytes at the same level always give the same blob. The header is
    fixed (mtime 0, no file name). At most ``2 * threads`` blocks are in flight, so memory
    stays bounded; a layer smaller than one block is compressed inline, with no threads.
    """

    BLOCK = 1 << 20
    _WINDOW = 1 << 15

    def __init__(self, sink: Sink, level: int | None = None, threads: int | None = None) -> None:
        chosen = zlib_ng.Z_DEFAULT_COMPRESSION if level is None else level
        if not -1 <= chosen <= 9:
            raise LayerError(f"gzip compression level {chosen} is not between 0 and 9")
        self._sink = sink
        self._level = 6 if chosen == -1 else chosen
        self._threads = threads or compression_threads()
        self._pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._inflight: deque[Future[tuple[bytes, int]]] = deque()
        self._sizes: deque[int] = deque()
        self._pending = bytearray()
        self._previous = b""
        self._crc = 0
        self._size = 0
        sink.write(_GZIP_HEADER)

    def write(self, data: bytes) -> int:
        pending = self._pending
        pending += data
        while len(pending) >= self.BLOCK:
            self._submit(bytes(pending[: self.BLOCK]))
            del pending[: self.BLOCK]
        return len(data)

    def close(self) -> None:
        if self._pending:
            self._submit(bytes(self._pending))
            self._pending.clear()
        while self._inflight:
            self._emit_oldest()
        self.abort()
        self._sink.write(zlib_ng.compress(b"", wbits=-15))  # the empty final block
        self._sink.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        self._sink.close()

    def abort(self) -> None:
        """Stop the worker threads (after a failure the output is discarded)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _submit(self, block: bytes) -> None:
        zdict = self._previous[-self._WINDOW :]
        self._previous = block
        if self._pool is None and len(block) < self.BLOCK:
            self._inflight.append(_done(self._deflate(block, zdict)))  # small: no threads
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="gzip")
            self._inflight.append(self._pool.submit(self._deflate, block, zdict))
        self._sizes.append(len(block))
        if len(self._inflight) > 2 * self._threads:
            self._emit_oldest()

    def _emit_oldest(self) -> None:
        compressed, crc = self._inflight.popleft().result()
        length = self._sizes.popleft()
        self._crc = zlib_ng.crc32_combine(self._crc, crc, length)
        self._size += length
        self._sink.write(compressed)

    def _deflate(self, block: bytes, zdict: bytes) -> tuple[bytes, int]:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            size = self.BLOCK + self.BLOCK // 8 + 500  # room for incompressible input
            compressor = zlib_ng._ParallelCompress(buffersize=size, level=self._level)
            self._local.compressor = compressor
        return cast(tuple[bytes, int], compressor.compress_and_crc(block, zdict))


def _done(value: tuple[bytes, int]) -> Future[tuple[bytes, int]]:
    future: Future[tuple[bytes, int]] = Future()
    future.set_result(value)
    return future


#: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown": the same for every layer.
_GZIP_HEADER = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])


class ZstdWriter:
    """Zstandard with worker threads; deterministic for a level (any thread count >= 1)."""

    def __init__(self, sink: Sink, level: int | None = None, threads: int | None = None) -> None:
        self._sink = sink
        chosen = 3 if level is None else level
        compressor = zstandard.ZstdCompressor(
            level=chosen, threads=threads or compression_threads(), write_checksum=False
        )
        writer = compressor.stream_writer(cast(BinaryIO, _SinkFile(sink)), closefd=False)
        self._zstd = cast(BinaryIO, writer)

    def write(self, data: bytes) -> int:
        self._zstd.write(data)
        return len(data)

    def close(self) -> None:
        self._zstd.close()
        self._sink.close()

    def abort(self) -> None:
        """Release the compressor after a failure."""
        with contextlib.suppress(Exception):
            self._zstd.close()
