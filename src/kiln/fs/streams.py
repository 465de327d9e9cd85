"""Small byte-stream building blocks shared by the layer writer and the blob store.

Why: a layer is written once, in one pass, through a chain tar -> hash (diff_id) -> compress ->
hash (digest) -> file. Each link is a tiny object with ``write``/``close`` so the chain can be
assembled differently per compression without holding a layer in memory.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import zlib
from typing import BinaryIO, Protocol

from kiln.errors import LayerError


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


class GzipWriter:
    """Gzip-compress into ``sink``; the header is fixed (mtime 0, no name) for reproducibility."""

    def __init__(self, sink: Sink, level: int | None = None) -> None:
        self._sink = sink
        chosen = zlib.Z_DEFAULT_COMPRESSION if level is None else level
        # wbits 16+15: zlib writes the gzip wrapper itself, with mtime 0 and no file name.
        self._compressor = zlib.compressobj(chosen, zlib.DEFLATED, 16 + zlib.MAX_WBITS)

    def write(self, data: bytes) -> int:
        out = self._compressor.compress(data)
        if out:
            self._sink.write(out)
        return len(data)

    def close(self) -> None:
        self._sink.write(self._compressor.flush())
        self._sink.close()


class ZstdWriter:
    """Compress through the ``zstd`` command (the standard library has no zstd before 3.14).

    ``zstd`` output is written to a temporary file by the child, then copied into ``sink``; a
    pipe in both directions would need a thread to avoid deadlock, and a file keeps memory flat.
    """

    def __init__(self, sink: Sink, level: int | None = None) -> None:
        import tempfile

        binary = shutil.which("zstd")
        if binary is None:
            raise LayerError(
                "zstd compression needs the zstd command", hint="install zstd or use gzip"
            )
        self._sink = sink
        self._out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        argv = [binary, "-q", "-c", "--no-progress", f"-{level if level is not None else 3}"]
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=self._out)

    def write(self, data: bytes) -> int:
        assert self._proc.stdin is not None
        self._proc.stdin.write(data)
        return len(data)

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        if self._proc.wait() != 0:
            raise LayerError(f"zstd exited with status {self._proc.returncode}")
        self._out.seek(0)
        while chunk := self._out.read(1 << 20):
            self._sink.write(chunk)
        self._out.close()
        self._sink.close()
