"""Uploading a blob while it is written, against a real registry behind a fault proxy.

The writer here is a thread writing a file piece by piece through ``FileSink`` and a
``GrowingFile``, as ``write_layer`` does. The upload must send chunks before the writer is done
(checked by making the writer wait for a chunk to arrive), store exactly the bytes written, and
survive failed and lost chunks by re-reading the file; a writer that fails cancels the upload.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from kiln.errors import LayerError
from kiln.fs import GrowingFile
from kiln.fs.streams import FileSink
from kiln.registry import RegistryClient
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

CHUNK = 64 * 1024
DATA = os.urandom(10 * CHUNK + 1234)


@pytest.fixture
def proxy(registry: RegistryServer) -> Iterator[FaultProxy]:
    with FaultProxy(registry.host) as server:
        yield server


def unique() -> str:
    return f"streamed/img-{uuid.uuid4().hex[:8]}"


def wait_for(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + 30  # a guard against hanging, not a timing check
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def write(
    path: Path, growing: GrowingFile, *, pause: Callable[[int], None] = lambda _: None,
    fail_at: int | None = None,
) -> None:  # fmt: skip
    """Write DATA in 20 KiB pieces, calling ``pause(bytes so far)`` after each piece."""
    with open(path, "wb") as file:
        growing.opened(path)
        sink = FileSink(file, growing)
        for start in range(0, len(DATA), 20_000):
            if fail_at is not None and start >= fail_at:
                growing.failed()
                return
            sink.write(DATA[start : start + 20_000])
            pause(start + 20_000)
    growing.finished("sha256:" + hashlib.sha256(DATA).hexdigest(), len(DATA))


def small_chunks(proxy: FaultProxy) -> RegistryClient:
    """A client uploading in 64 KiB chunks that retries without waiting."""
    return RegistryClient(proxy.host, insecure=True, chunk_size=CHUNK, sleep=lambda _: None)


def stream(
    client: RegistryClient, repo: str, growing: GrowingFile, threads: ThreadPoolExecutor
) -> Future[str]:
    def upload() -> str:
        try:
            return client.upload_growing_blob(repo, growing)
        finally:
            growing.release()

    return threads.submit(upload)


def fetched(client: RegistryClient, repo: str, digest: str) -> bytes:
    out = io.BytesIO()
    client.fetch_blob(repo, digest, out)
    return out.getvalue()


def stream_and_fetch_back(proxy: FaultProxy, tmp_path: Path) -> None:
    """Write DATA while streaming it up through ``proxy``; the registry must return it intact."""
    repo = unique()
    growing = GrowingFile(1)
    with small_chunks(proxy) as client, ThreadPoolExecutor(1) as threads:
        upload = stream(client, repo, growing, threads)
        write(tmp_path / "blob", growing)
        digest = upload.result(60)
        assert fetched(client, repo, digest) == DATA


def test_chunks_leave_before_the_blob_is_complete(proxy: FaultProxy, tmp_path: Path) -> None:
    repo = unique()
    growing = GrowingFile(1)
    arrived = threading.Event()

    def pause(written: int) -> None:
        # the writer holds back its second half until the first chunks reached the registry
        halfway = written >= len(DATA) // 2 and not arrived.is_set()
        if halfway and wait_for(lambda: proxy.count("PATCH", "/blobs/uploads/") >= 2):
            arrived.set()

    with small_chunks(proxy) as client, ThreadPoolExecutor(1) as threads:
        upload = stream(client, repo, growing, threads)
        write(tmp_path / "blob", growing, pause=pause)
        digest = upload.result(60)
        assert arrived.is_set()
        assert digest == "sha256:" + hashlib.sha256(DATA).hexdigest()
        assert client.confirmed(repo, digest)
        assert fetched(client, repo, digest) == DATA
    assert proxy.count("POST", "/blobs/uploads/") == 1
    assert proxy.count("PATCH", "/blobs/uploads/") == 11  # ten whole chunks and the rest


def test_failed_chunks_resume_from_the_file(proxy: FaultProxy, tmp_path: Path) -> None:
    patches: list[str] = []

    def faults(method: str, path: str) -> Fault | None:
        if method == "PATCH":
            patches.append(path)
            if len(patches) == 2:
                return Fault("status", status=503)  # not forwarded: resend that chunk
            if len(patches) == 5:
                return Fault("truncate")  # forwarded, answer cut: ask where to go on
        return None

    proxy.rule = faults
    stream_and_fetch_back(proxy, tmp_path)
    assert proxy.count("GET", "/blobs/uploads/") >= 1  # asked the registry for its Range
    assert set(proxy.faults()) == {"status", "truncate"}


def test_a_lost_session_restarts_from_the_file(proxy: FaultProxy, tmp_path: Path) -> None:
    patches: list[str] = []

    def lose_the_session(method: str, path: str) -> Fault | None:
        if method == "PATCH":
            patches.append(path)
            if len(patches) == 3:
                return Fault("reset")  # forwarded, then the answer (and the new state) is lost
        return None

    proxy.rule = lose_the_session
    stream_and_fetch_back(proxy, tmp_path)
    assert proxy.count("POST", "/blobs/uploads/") == 2  # started again, from the file's start
    assert len(patches) > 11


def test_a_failed_writer_cancels_the_upload(proxy: FaultProxy, tmp_path: Path) -> None:
    repo = unique()
    growing = GrowingFile(1)
    with small_chunks(proxy) as client, ThreadPoolExecutor(1) as threads:
        upload = stream(client, repo, growing, threads)

        def pause(written: int) -> None:
            if written >= 3 * CHUNK:
                wait_for(lambda: proxy.count("PATCH", "/blobs/uploads/") >= 1)

        write(tmp_path / "blob", growing, pause=pause, fail_at=4 * CHUNK)
        with pytest.raises(LayerError, match="not completed"):
            upload.result(60)
    assert proxy.count("PATCH", "/blobs/uploads/") >= 1
    assert proxy.count("DELETE", "/blobs/uploads/") == 1
    assert proxy.count("PUT", "/blobs/uploads/") == 0
