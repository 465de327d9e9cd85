"""Reading a layer blob as its uncompressed tar, whatever compression it was stored with.

Why: ``docker save`` archives hold uncompressed ``layer.tar`` files, and their size must be known
before the tar header is written. These helpers sniff the compression from magic bytes (media
types lie more often than magic does), verify the blob and diff-ID digests while streaming, and
never hold a layer in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from typing import BinaryIO, cast

from kiln.errors import DigestMismatchError, LayerError

CHUNK_SIZE = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _HashingReader(io.RawIOBase):
    """A read-only stream that hashes everything read through it, with a pushed-back prefix."""

    def __init__(self, source: BinaryIO, algorithm: str) -> None:
        self._source = source
        self.hasher = hashlib.new(algorithm)
        self._prefix = b""

    def readable(self) -> bool:
        return True

    def peek_prefix(self, size: int) -> bytes:
        """Read ``size`` bytes (hashed) and push them back so the next read returns them."""
        self._prefix = self._read_source(size)
        return self._prefix

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._read_source(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _read_source(self, size: int) -> bytes:
        data = self._source.read(size)
        self.hasher.update(data)
        return data


def open_uncompressed(source: BinaryIO, digest: str = "sha256:") -> BinaryIO:
    """Wrap ``source`` so reads return the uncompressed tar (gzip or plain; zstd is refused).

    The returned stream owns ``source``: closing it closes both.
    """
    try:
        plain = _Decompressing(source, digest).plain
    except BaseException:
        source.close()
        raise
    return cast(BinaryIO, io.BufferedReader(_Owning(plain, source), CHUNK_SIZE))


class _Owning(io.RawIOBase):
    """Reads ``plain``; closing closes it and the ``source`` it reads from (``GzipFile`` leaves
    a file object it was given open)."""

    def __init__(self, plain: BinaryIO, source: BinaryIO) -> None:
        self._plain = plain
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._plain.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._plain.close()
            finally:
                self._source.close()
        super().close()


def measure_layer(source: BinaryIO, digest: str, diff_id: str) -> int:
    """Stream a whole blob once: check its digest and diff ID; return the uncompressed size."""
    stream = _Decompressing(source, digest)
    algorithm, _, _ = diff_id.partition(":")
    diff_hasher = hashlib.new(algorithm)
    size = 0
    try:
        while chunk := stream.plain.read(CHUNK_SIZE):
            diff_hasher.update(chunk)
            size += len(chunk)
    except (OSError, EOFError) as exc:
        raise LayerError(f"layer {digest} cannot be decompressed: {exc}") from exc
    # gzip stops at the end of its member; the blob digest must cover any trailing bytes too.
    while stream.buffered.read(CHUNK_SIZE):
        pass
    _check(digest, stream.hashing.hasher.hexdigest(), "blob")
    _check(diff_id, diff_hasher.hexdigest(), "uncompressed layer")
    return size


class _Decompressing:
    """The reader stack over one blob: hashing (compressed bytes), buffering, decompression."""

    def __init__(self, source: BinaryIO, digest: str) -> None:
        self.hashing = _HashingReader(source, digest.partition(":")[0] or "sha256")
        magic = self.hashing.peek_prefix(4)
        self.buffered = io.BufferedReader(self.hashing, CHUNK_SIZE)
        if magic.startswith(ZSTD_MAGIC):
            raise LayerError(
                f"layer {digest} is zstd-compressed, which kiln cannot decompress here",
                hint="use gzip or uncompressed layers for docker-archive output",
            )
        self.plain: BinaryIO = self.buffered
        if magic.startswith(GZIP_MAGIC):
            self.plain = cast(BinaryIO, gzip.GzipFile(fileobj=self.buffered, mode="rb"))


def _check(expected: str, actual_hex: str, what: str) -> None:
    algorithm, _, hex_part = expected.partition(":")
    if actual_hex != hex_part:
        raise DigestMismatchError(
            f"{what} {expected} has digest {algorithm}:{actual_hex}",
            hint="the blob store is corrupt, or the diff ID recorded for the layer is wrong",
        )
