"""Parallel layer compression: valid streams, honoured levels, digests independent of threads."""

from __future__ import annotations

import gzip
import hashlib
import os
import random
import subprocess
from pathlib import Path

import pytest
import zstandard

from kiln.fs import Changes, write_layer
from kiln.fs.streams import GzipWriter, ZstdWriter

# Three and a half blocks: mixed random and repetitive bytes, so every block is different.
_RNG = random.Random(7)
DATA = b"".join(_RNG.randbytes(300_000) + b"kiln layer line %d\n" % i * 40_000 for i in range(3))[
    : 3 * GzipWriter.BLOCK + GzipWriter.BLOCK // 2
]


class Collect:
    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def close(self) -> None:
        self.closed = True

    @property
    def data(self) -> bytes:
        return b"".join(self.parts)


def compress(kind: type[GzipWriter] | type[ZstdWriter], level: int | None, threads: int,
             chunk: int) -> bytes:  # fmt: skip
    sink = Collect()
    writer = kind(sink, level, threads)
    for start in range(0, len(DATA), chunk):
        writer.write(DATA[start : start + chunk])
    writer.close()
    assert sink.closed
    return sink.data


@pytest.mark.parametrize("kind", [GzipWriter, ZstdWriter])
def test_same_bytes_whatever_the_threads_and_write_sizes(
    kind: type[GzipWriter] | type[ZstdWriter],
) -> None:
    blobs = {compress(kind, None, threads, chunk) for threads, chunk in
             [(1, 1 << 20), (2, 10_240), (4, 333_333), (3, 5 << 20)]}  # fmt: skip
    assert len(blobs) == 1


def test_gzip_is_one_valid_stream_of_the_input(tmp_path: Path) -> None:
    blob = compress(GzipWriter, 6, 2, 65_536)
    assert gzip.decompress(blob) == DATA
    path = tmp_path / "blob.gz"
    path.write_bytes(blob)
    subprocess.run(["gzip", "-t", str(path)], check=True)  # an independent implementation
    out = subprocess.run(["pigz", "-dc", str(path)], check=True, capture_output=True).stdout
    assert hashlib.sha256(out).digest() == hashlib.sha256(DATA).digest()


def test_zstd_decompresses_to_the_input() -> None:
    blob = compress(ZstdWriter, 3, 2, 65_536)
    assert zstandard.ZstdDecompressor().decompressobj().decompress(blob) == DATA


def test_levels_are_honoured() -> None:
    fast, best = compress(GzipWriter, 1, 2, 1 << 20), compress(GzipWriter, 9, 2, 1 << 20)
    assert fast != best and len(best) < len(fast)
    assert gzip.decompress(fast) == gzip.decompress(best) == DATA
    with pytest.raises(Exception, match="between 0 and 9"):
        GzipWriter(Collect(), 12)


def test_empty_and_tiny_inputs() -> None:
    for payload in (b"", b"x"):
        sink = Collect()
        writer = GzipWriter(sink, None, 2)
        writer.write(payload)
        writer.close()
        assert gzip.decompress(sink.data) == payload


def test_layer_digest_is_stable_across_thread_counts(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "big").write_bytes(DATA)
    (root / "small").write_text("small\n")
    os.utime(root / "big", (1_600_000_000, 1_600_000_000))
    infos = {
        write_layer(root, Changes(("big", "small")), tmp_path / f"l{t}", threads=t)
        for t in (1, 2, 4)
    }
    assert len({(i.digest, i.diff_id) for i in infos}) == 1
