"""Parallel layer compression: valid streams, honoured levels, digests independent of threads.

Blocks that deflate cannot shrink (random or compressed bytes) go out stored; that choice is
checked here like the rest: any reader accepts it, and it depends only on the bytes.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import random
import subprocess
import threading
from pathlib import Path

import pytest
import zstandard

from kiln.fs import Changes, write_layer
from kiln.fs.streams import GzipWriter, ZstdWriter, worth_deflating

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


BLOCK = GzipWriter.BLOCK
RANDOM = random.Random(11).randbytes(2 * BLOCK + 12_345)
TEXT = b"".join(b"line %d of some text file\n" % i for i in range(100_000))[: 2 * BLOCK]
# random, text, random with a tenth of text, text with a random middle, a random tail
MIXED = (
    RANDOM[:BLOCK] + TEXT[:BLOCK] + RANDOM[BLOCK : 2 * BLOCK - 100_000] + TEXT[:100_000]
    + TEXT[BLOCK : BLOCK + 300_000] + RANDOM[:400_000] + TEXT[:348_576] + RANDOM[-12_345:]
)  # fmt: skip


def compress(kind: type[GzipWriter] | type[ZstdWriter], level: int | None, threads: int,
             chunk: int, data: bytes = DATA) -> bytes:  # fmt: skip
    sink = Collect()
    writer = kind(sink, level, threads)
    for start in range(0, len(data), chunk):
        writer.write(data[start : start + chunk])
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


def stored_size(length: int) -> int:
    """Bytes of ``length`` input as stored deflate blocks (5-byte header per 64 KiB - 1)."""
    return length + 5 * -(-length // 65_535)


def test_random_data_goes_out_stored_and_every_reader_accepts_it(tmp_path: Path) -> None:
    blob = compress(GzipWriter, 6, 2, 65_536, RANDOM)
    # header, each block stored (nothing deflated), the empty final block, CRC and size
    assert len(blob) == 10 + 2 * stored_size(BLOCK) + stored_size(12_345) + 2 + 8
    assert blob[10] & 0b111 == 0  # the first deflate block: not final, type 00 (stored)
    assert gzip.decompress(blob) == RANDOM
    path = tmp_path / "random.gz"
    path.write_bytes(blob)
    subprocess.run(["gzip", "-t", str(path)], check=True)
    for tool in (["gzip", "-dc"], ["pigz", "-dc"]):
        out = subprocess.run([*tool, str(path)], check=True, capture_output=True).stdout
        assert out == RANDOM, tool


@pytest.mark.parametrize("level", [1, 9])
def test_no_level_makes_random_data_larger_than_storing_it(level: int) -> None:
    assert len(compress(GzipWriter, level, 2, 1 << 20, RANDOM)) == len(
        compress(GzipWriter, 6, 2, 1 << 20, RANDOM)
    )


@pytest.mark.parametrize("name", ["random", "mixed"])
def test_stored_or_deflated_whatever_the_threads_and_write_sizes(name: str) -> None:
    data = RANDOM if name == "random" else MIXED
    blobs = {compress(GzipWriter, None, threads, chunk, data) for threads, chunk in
             [(1, 1 << 20), (2, 10_240), (4, 333_333), (3, 5 << 20), (2, 4_097)]}  # fmt: skip
    assert len(blobs) == 1
    assert gzip.decompress(blobs.pop()) == data


def test_blocks_with_anything_compressible_are_still_deflated() -> None:
    text = compress(GzipWriter, 6, 2, 1 << 20, TEXT)
    assert len(text) < len(TEXT) // 8
    mixed = compress(GzipWriter, 6, 2, 1 << 20, MIXED)
    # only the random block and the random tail are stored; the text saves most of its size
    random_only = stored_size(BLOCK) + stored_size(12_345)
    assert random_only + 10 < len(mixed) < random_only + 2 * BLOCK - 100_000
    assert gzip.decompress(mixed) == MIXED


def test_the_stored_choice_looks_at_the_bytes() -> None:
    rng = random.Random(3)
    assert not worth_deflating(rng.randbytes(BLOCK))
    assert not worth_deflating(gzip.compress(base64.b64encode(rng.randbytes(900_000))))
    assert worth_deflating(TEXT[:BLOCK])
    assert worth_deflating(rng.randbytes(900_000) + TEXT[:148_576])  # a seventh of text
    assert worth_deflating(base64.b64encode(rng.randbytes(700_000)))  # 6 bits a byte
    # random pieces, each twice in a row: only deflate's 32 KiB window finds the repeats
    assert worth_deflating(b"".join(2 * rng.randbytes(20_000) for _ in range(27))[:BLOCK])
    assert worth_deflating(b"a" * 100)
    assert not worth_deflating(rng.randbytes(100))


class FailingSink(Collect):
    """Refuses its fourth write, as a full disk would."""

    def write(self, data: bytes) -> int:
        if len(self.parts) == 3:
            raise OSError(28, "No space left on device")
        return super().write(data)


def test_a_failing_sink_stops_the_writer_with_its_error() -> None:
    writer = GzipWriter(FailingSink(), 6, 2)
    with pytest.raises(OSError, match="No space left"):
        for start in range(0, len(MIXED), 100_000):
            writer.write(MIXED[start : start + 100_000])
        writer.close()
    assert threading.active_count() < 10  # the pool and the output thread are gone
    assert not any(t.name.startswith(("gzip", "gzip-out")) for t in threading.enumerate())


def test_abort_stops_the_threads_and_finishes_nothing() -> None:
    sink = Collect()
    writer = GzipWriter(sink, 9, 2)
    writer.write(MIXED)
    writer.abort()
    assert not any(t.name.startswith("gzip") for t in threading.enumerate())
    assert not sink.closed and b"\x03\x00" not in sink.parts  # no final block, no trailer
    assert len(sink.parts) <= 1 + 4  # the header and at most the full blocks written
