"""Small byte-stream building blocks shared by the layer writer and the blob store.

Why: a layer is written once, in one pass, through a chain tar -> hash (diff_id) -> compress ->
hash (digest) -> file. Each link is a tiny object with ``write``/``close`` so the chain can be
assembled differently per compression without holding a layer in memory. ``GrowingFile`` lets
other threads read the file while it is written (an upload need not wait for the last byte).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import queue
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

import zstandard
from zlib_ng import zlib_ng

from kiln.errors import LayerError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

#: What the links pass along: any contiguous bytes; a link never keeps it after ``write``.
Buffer = bytes | bytearray | memoryview


class Sink(Protocol):
    """Anything bytes can be pushed into; ``close`` flushes and finishes (not the final file)."""

    def write(self, data: Buffer) -> int: ...

    def close(self) -> None: ...


class HashingWriter:
    """Forward bytes to ``sink`` while computing their sha256 and counting them."""

    def __init__(self, sink: Sink) -> None:
        self._sink = sink
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, data: Buffer) -> int:
        self._hash.update(data)
        length = len(data)
        self.size += length
        self._sink.write(data)
        return length

    def close(self) -> None:
        self._sink.close()

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of everything written so far."""
        return "sha256:" + self._hash.hexdigest()


class FileSink:
    """Write to an open binary file without closing it (the owner of the file closes it).

    With ``growing``, every write is flushed and announced to the file's readers.
    """

    def __init__(self, file: BinaryIO, growing: GrowingFile | None = None) -> None:
        self._file = file
        self._growing = growing
        self._size = 0

    def write(self, data: Buffer) -> int:
        self._file.write(data)
        length = len(data)
        self._size += length
        if self._growing is not None:
            self._file.flush()
            self._growing.grew(self._size)
        return length

    def close(self) -> None:
        self._file.flush()


class GrowingFile:
    """A file being written by one thread and read, as it grows, by others (``readers``).

    The writer calls ``opened(path)`` once the file exists, ``grew(size)`` after each flushed
    write, then ``finished(digest, size)`` or ``failed()``. A reader calls ``wait(n)`` to
    block until ``n`` bytes are there (or the file is complete), reads with ``read``, and calls
    ``release()`` when done; the read descriptor, opened at ``opened``, is closed after the
    last release, so readers keep working after the file is renamed. ``on_finish`` runs on the
    writer's thread before ``finished`` returns.
    """

    def __init__(self, readers: int, on_finish: Callable[[str, int], None] | None = None) -> None:
        self._changed = threading.Condition()
        self._readers = readers
        self._on_finish = on_finish
        self._fd = -1
        self._size = 0
        self._result: tuple[str, int] | None = None
        self._failed = False

    # writer side
    def opened(self, path: str | os.PathLike[str]) -> None:
        """The file now exists at ``path``: open it for the readers."""
        with self._changed:
            if self._readers > 0 and self._fd < 0:
                self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    def grew(self, size: int) -> None:
        """``size`` bytes are written (and flushed)."""
        with self._changed:
            self._size = size
            self._changed.notify_all()

    def finished(self, digest: str, size: int) -> None:
        """The file is complete: ``size`` bytes whose sha256 is ``digest``."""
        if self._on_finish is not None:
            self._on_finish(digest, size)
        with self._changed:
            self._size = size
            self._result = (digest, size)
            self._changed.notify_all()

    def failed(self) -> None:
        """The file will never be complete: readers give up (no effect once finished)."""
        with self._changed:
            if self._result is None:
                self._failed = True
                self._changed.notify_all()

    # reader side
    def wait(self, size: int) -> int:
        """Block until ``size`` bytes are written or the file is complete; return the size
        written. ``LayerError`` if the writer failed."""
        with self._changed:
            while not self._failed and self._result is None and self._size < size:
                self._changed.wait()
            if self._failed:
                raise LayerError("the blob being followed was not completed")
            return self._size

    @property
    def result(self) -> tuple[str, int] | None:
        """``(digest, size)`` once the file is complete, else None."""
        with self._changed:
            return self._result

    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset``, which must have been written (see ``wait``)."""
        parts: list[bytes] = []
        while length > 0:
            data = os.pread(self._fd, length, offset)
            if not data:
                raise LayerError(f"the blob being followed ended before byte {offset}")
            parts.append(data)
            offset += len(data)
            length -= len(data)
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def release(self) -> None:
        """One reader is done; the last one closes the read descriptor."""
        with self._changed:
            self._readers -= 1
            if self._readers == 0 and self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


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
        self._sink.write(view)
        return view.nbytes


class GzipWriter:
    """Gzip on several threads, pigz's way; the output depends on the bytes and level only.

    The data is cut here into fixed ``BLOCK``-sized blocks. Each is encoded on a worker thread
    and the results are written in order by one output thread, followed by an empty final
    block and the combined CRC. A block is deflated (zlib-ng, which releases the GIL) with the
    previous 32 KiB as its dictionary and ends with a sync flush, unless it looks incompressible
    (``worth_deflating``, a sample deflated quickly) or deflating made it larger: then it goes
    out as stored deflate blocks, which cost a copy instead of a compressor's full search
    (random or already-compressed bytes gain nothing from deflate). Both choices read only
    the block itself, and the cuts depend neither on how callers called ``write`` nor on the
    thread count, so the same bytes at the same level always give the same blob. The header
    is fixed (mtime 0, no file name). At most ``2 * threads + 2`` blocks are in flight, so
    memory stays bounded; a layer smaller than one block is encoded inline, with no threads.
    """

    BLOCK = 1 << 20
    _FIRST_BLOCK = 1 << 14  # the first block buffer starts this small (see __init__)
    _WINDOW = 1 << 15

    def __init__(self, sink: Sink, level: int | None = None, threads: int | None = None) -> None:
        chosen = zlib_ng.Z_DEFAULT_COMPRESSION if level is None else level
        if not -1 <= chosen <= 9:
            raise LayerError(f"gzip compression level {chosen} is not between 0 and 9")
        self._sink = sink
        self._level = 6 if chosen == -1 else chosen
        self._threads = threads or compression_threads()
        self._local = threading.local()
        # Filled by write(), then handed to a worker. The first grows to BLOCK as data comes:
        # zero-filling 1 MiB up front cost every small layer a third of a millisecond.
        self._block = bytearray(min(self._FIRST_BLOCK, self.BLOCK))
        self._fill = 0
        self._spare: list[bytearray] = []  # block buffers back from the output thread
        self._window = b""  # the last 32 KiB before the current block: its dictionary
        self._pool: ThreadPoolExecutor | None = None
        self._output: threading.Thread | None = None
        self._queue: queue.Queue[tuple[Future[_Encoded], bytearray] | None] = queue.Queue()
        self._room = threading.Semaphore(2 * self._threads + 2)
        self._failure: BaseException | None = None
        self._aborted = False
        self._crc = 0
        self._size = 0
        sink.write(_GZIP_HEADER)

    def write(self, data: Buffer) -> int:
        view = memoryview(data)
        total = len(view)
        done = 0
        while done < total:
            if self._fill == len(self._block) < self.BLOCK:
                self._block += bytes(min(3 * len(self._block), self.BLOCK - len(self._block)))
            take = min(len(self._block) - self._fill, total - done)
            self._block[self._fill : self._fill + take] = view[done : done + take]
            self._fill += take
            done += take
            if self._fill == self.BLOCK:
                self._submit()
        return total

    def close(self) -> None:
        if self._fill:
            self._submit()
        self._stop()
        if self._failure is not None:
            raise self._failure
        self._sink.write(_FINAL_BLOCK)
        self._sink.write(struct.pack("<II", self._crc, self._size & 0xFFFFFFFF))
        self._sink.close()

    def abort(self) -> None:
        """Stop the threads without writing more (after a failure the output is discarded)."""
        self._aborted = True
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)  # blocks not started: dropped
        self._stop()

    def _stop(self) -> None:
        if self._output is not None:
            self._queue.put(None)
            self._output.join()
            self._output = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _submit(self) -> None:
        if self._failure is not None:
            raise self._failure
        buffer, length = self._block, self._fill
        block = memoryview(buffer)[:length]
        zdict = self._window
        self._window = bytes(block[-self._WINDOW :])
        self._fill = 0
        if self._pool is None and length < self.BLOCK:
            self._emit(self._encode(block, zdict))  # small: no threads
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="gzip")
            self._output = threading.Thread(target=self._write_out, name="gzip-out", daemon=True)
            self._output.start()
        self._room.acquire()
        self._queue.put((self._pool.submit(self._encode, block, zdict), buffer))
        self._block = self._spare.pop() if self._spare else bytearray(self.BLOCK)

    def _write_out(self) -> None:
        """The output thread: encoded blocks in order into the sink, then their buffers back."""
        while (item := self._queue.get()) is not None:
            future, buffer = item
            try:
                encoded = future.result()  # even when failing: the buffer must be free again
                if self._failure is None and not self._aborted:
                    self._emit(encoded)
            except BaseException as exc:  # handed to the writing thread
                if not self._aborted:
                    self._failure = self._failure or exc
            finally:
                self._spare.append(buffer)
                self._room.release()

    def _emit(self, encoded: _Encoded) -> None:
        data, crc, length = encoded
        self._crc = zlib_ng.crc32_combine(self._crc, crc, length)
        self._size += length
        self._sink.write(data)

    def _encode(self, block: memoryview, zdict: bytes) -> _Encoded:
        length = len(block)
        if self._level == 0 or not worth_deflating(block):
            return stored_blocks(block), zlib_ng.crc32(block), length
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            size = self.BLOCK + self.BLOCK // 8 + 500  # room for incompressible input
            compressor = zlib_ng._ParallelCompress(buffersize=size, level=self._level)
            self._local.compressor = compressor
        compressed, crc = cast(tuple[bytes, int], compressor.compress_and_crc(block, zdict))
        if len(compressed) > _stored_size(length):  # deflate made it larger: store it
            return stored_blocks(block), crc, length
        return compressed, crc, length


_Encoded = tuple[bytes, int, int]  # deflate data, crc32 of the input, input length

#: The deflate sample: this many slices of this size, spread evenly over a block, deflated
#: as one buffer at a fast level. Deflate must save at least 1 % of it (``_SHRINKS``; checked
#: again on three slices at irregular places, each with the 32 KiB before it as dictionary,
#: for repeats further apart than a slice) or the block is stored. Measured on real trees:
#: text, binaries, and blocks with any of them pass; random or compressed bytes (.gz, .deb,
#: images, model weights) do not (layers 0.01-0.05 % larger than deflating everything), and
#: the probe costs about 4 % of deflating an incompressible block at level 6.
_PROBE_SLICES = 16
_PROBE_SLICE = 2048
_PROBE_LEVEL = 2  # zlib-ng's fastest level with dynamic Huffman codes (1 uses fixed codes)
_PROBE_REPEATS = ((2, 9), (5, 9), (7, 9))  # where those start (fractions of the block):
_PROBE_REPEAT = 4096  # uneven gaps, so periodic data rarely hides its repeats from all three
_SHRINKS = 0.99
_STORED_MAX = 0xFFFF  # bytes in one stored deflate block


def worth_deflating(block: Buffer) -> bool:
    """Whether deflate would shrink ``block``, judged from a sample (deterministic)."""
    view = memoryview(block)
    size = len(view)
    if size <= _PROBE_SLICES * _PROBE_SLICE:
        sample = bytes(view)
    else:
        step = size // _PROBE_SLICES
        sample = b"".join(view[i * step : i * step + _PROBE_SLICE] for i in range(_PROBE_SLICES))
    if len(zlib_ng.compress(sample, _PROBE_LEVEL, -15)) < _SHRINKS * len(sample):
        return True
    if size <= len(sample):
        return False  # the sample was the whole block
    window = GzipWriter._WINDOW
    probed = packed = 0
    for numerator, denominator in _PROBE_REPEATS:
        at = numerator * size // denominator
        piece = view[at : at + _PROBE_REPEAT]
        compressor = zlib_ng.compressobj(
            _PROBE_LEVEL, zlib_ng.DEFLATED, -15, 8, zlib_ng.Z_DEFAULT_STRATEGY,
            view[max(0, at - window) : at],
        )  # fmt: skip
        packed += len(compressor.compress(piece)) + len(compressor.flush())
        probed += len(piece)
    return packed < _SHRINKS * probed


def stored_blocks(data: Buffer) -> bytes:
    """``data`` as non-final stored deflate blocks (the stream must be at a byte boundary)."""
    view = memoryview(data)
    parts: list[bytes | memoryview] = []
    for start in range(0, len(view), _STORED_MAX):
        piece = view[start : start + _STORED_MAX]
        parts.append(struct.pack("<BHH", 0, len(piece), len(piece) ^ 0xFFFF))
        parts.append(piece)
    return b"".join(parts)


def _stored_size(length: int) -> int:
    return length + 5 * -(-length // _STORED_MAX)


#: magic, deflate, no flags, mtime 0, no extra flags, OS "unknown": the same for every layer.
_GZIP_HEADER = bytes([0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF])
_FINAL_BLOCK = b"\x03\x00"  # an empty final deflate block (fixed codes, end of block)


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

    def write(self, data: Buffer) -> int:
        self._zstd.write(data)
        return len(data)

    def close(self) -> None:
        self._zstd.close()
        self._sink.close()

    def abort(self) -> None:
        """Release the compressor after a failure."""
        with contextlib.suppress(Exception):
            self._zstd.close()
