"""BlobStore: content-addressed, verified, atomically published blobs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from kiln.errors import DigestMismatchError, LayerError, UnsafePathError
from kiln.fs import BlobStore

DATA = b"layer bytes " * 1000
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()


def leftovers(store: BlobStore) -> list[str]:
    return sorted(p.name for p in (store.root / "blobs" / "sha256").iterdir())


def test_write_and_read_back(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    assert not store.has(DIGEST)
    with store.writer() as w:
        w.write(DATA[:100])
        w.write(DATA[100:])
    assert w.digest == DIGEST and w.size == len(DATA)
    assert store.has(DIGEST)
    assert store.path(DIGEST) == tmp_path / "blobs" / "sha256" / DIGEST[7:]
    with store.open(DIGEST) as f:
        assert f.read() == DATA
    assert leftovers(store) == [DIGEST[7:]]


def test_expected_digest_matches(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with store.writer(expected_digest=DIGEST) as w:
        w.write(DATA)
    assert store.has(DIGEST)


def test_mismatch_raises_and_stores_nothing(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(DigestMismatchError, match="expected"), store.writer(DIGEST) as w:
        w.write(DATA + b"tampered")
    assert not store.has(DIGEST)
    assert leftovers(store) == []


def test_exception_in_block_discards_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(DATA)
        raise RuntimeError("download interrupted")
    assert leftovers(store) == []


@pytest.mark.parametrize(
    "bad", ["sha256:../../etc/passwd", "sha512:" + "0" * 128, "sha256:" + "A" * 64, DIGEST[7:]]
)
def test_malformed_digests_are_refused(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(UnsafePathError):
        store.path(bad)


def test_open_missing_blob(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="not in the store"):
        BlobStore(tmp_path).open(DIGEST)


def test_add_file_moves_it_in(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    src = tmp_path / "built.tar.gz"
    src.write_bytes(DATA)
    dest = store.add_file(src, DIGEST)
    assert dest == store.path(DIGEST)
    assert not src.exists()
    assert dest.read_bytes() == DATA
