"""Blob uploads: monolithic for small blobs, chunked (POST, PATCH..., PUT) for large ones.

Why its own module: an upload is a small protocol of its own, built here on the client's public
upload steps (``start_upload``, ``upload_chunk``, ``upload_status``, ``finish_upload``), with
the retry layer deciding when to try again. Large layers go up in chunks so a
dropped connection costs one chunk, not the whole layer: after a failed PATCH the registry is
asked how much it holds (``GET`` on the upload URL, ``Range: 0-N``) and the upload resumes from
there. When the registry has lost the session (the distribution registry cancels an upload whose
offset no longer matches its state token) the whole upload starts again, up to the retry budget.
Blob bytes are always streamed from the caller's opener, never held in memory.

A blob can also go up while it is still being written (``upload_growing``): each chunk is sent
as soon as the writer has it on disk, and the closing PUT, which names the digest, once the
writer finished. Resumes and restarts work as above, re-reading from the file whatever the
registry lacks, so pipelining an upload with the compression costs no fault tolerance.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

from kiln.errors import RegistryError
from kiln.net import Body
from kiln.registry.problems import UPLOAD_LOST_CODES
from kiln.registry.retry import Attempt, Retrying
from kiln.registry.session import Request

if TYPE_CHECKING:
    from kiln.registry.client import RegistryClient

log = logging.getLogger("kiln")

#: Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
_SMALL_BLOB = 1024 * 1024  # uploaded from memory: retries are trivial, empty blobs work


class GrowingSource(Protocol):
    """A blob file still being written (``kiln.fs.GrowingFile`` is one); see its methods."""

    def wait(self, size: int) -> int: ...

    @property
    def result(self) -> tuple[str, int] | None: ...

    def read(self, offset: int, length: int) -> bytes: ...


class _SourceStream:
    """A growing source as the seekable stream a PATCH body (``_Window``) is read from."""

    def __init__(self, source: GrowingSource) -> None:
        self._source = source
        self._position = 0

    def seek(self, offset: int) -> None:
        self._position = offset

    def read(self, size: int) -> bytes:
        data = self._source.read(self._position, size)
        self._position += len(data)
        return data

    def close(self) -> None:
        """Nothing to close: the source belongs to its writer."""


class _UploadLost(Exception):
    """The registry no longer knows the upload session: only a new upload can help.

    Raised through a chunk's retries (resuming cannot help) up to the upload's, which starts
    over with ``error`` (a temporary ``RegistryError``) as the reason.
    """

    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


class _Window:
    """``length`` bytes of a stream from ``offset``: one PATCH body, read lazily."""

    def __init__(self, stream: BinaryIO, offset: int, length: int) -> None:
        stream.seek(offset)
        self._stream = stream
        self._left = length

    def __len__(self) -> int:
        return self._left

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        data = self._stream.read(wanted)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._stream.close()


@dataclass(frozen=True)
class BlobUpload:
    """One blob to upload into ``repo``; ``opener`` returns a fresh stream each call."""

    repo: str
    digest: str
    size: int
    opener: Callable[[], BinaryIO]
    where: str


class Uploader:
    """Runs uploads for one client through its public upload steps: chooses monolithic or
    chunked, resumes a failed chunk, restarts a lost session; ``retry`` decides when."""

    def __init__(
        self, client: RegistryClient, retry: Retrying, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> None:
        self._client = client
        self._retry = retry
        self.chunk_size = chunk_size

    def upload(self, blob: BlobUpload, mount_from: str | None = None) -> bool:
        """Upload ``blob``, starting again on temporary failures within the retry budget.

        Returns whether the registry confirmed it holds the blob under ``blob.digest`` (a
        mount, a final response naming that digest, or a HEAD after a lost answer); False
        means it accepted the upload without saying so.
        """
        mount = (blob.digest, mount_from) if mount_from else None

        def attempt(attempt: Attempt) -> bool:
            if self._again(attempt, blob, blob.digest):
                return True
            location = self._client.start_upload(blob.repo, blob.where, mount=mount)
            if location is None:
                return True  # mounted from another repository
            if blob.size > self.chunk_size:
                return self._chunked(blob, location)
            return self._monolithic(blob, location)

        return self._retry.run(_restarting(attempt), self._request(blob))

    def upload_growing(self, source: GrowingSource, repo: str, where: str) -> bool:
        """Upload a blob while it is written: chunks as they reach the disk, the closing PUT
        once ``source`` is complete. Returns as ``upload``; the digest is ``source.result``.

        If the writer fails, the upload session is cancelled and its error propagates.
        """

        def opener() -> BinaryIO:
            return cast(BinaryIO, _SourceStream(source))

        blob = BlobUpload(repo, "(being written)", 0, opener, where)

        def attempt(attempt: Attempt) -> bool:
            done = source.result
            if self._again(attempt, blob, done[0] if done else None):
                return True
            location = self._client.start_upload(repo, where)
            assert location is not None  # no mount was asked for
            return self._follow(blob, source, location)

        return self._retry.run(_restarting(attempt), self._request(blob))

    def _again(self, attempt: Attempt, blob: BlobUpload, digest: str | None) -> bool:
        """Before a new attempt: True if the registry has the blob anyway (the last attempt
        completed although its answer was lost)."""
        if not attempt.number:
            return False
        if digest is not None and self._client.blob_exists(blob.repo, digest):
            return True
        log.warning("Upload of %s failed; starting it again", digest or blob.digest)
        return False

    def _request(self, blob: BlobUpload) -> Request:
        return Request("POST", f"/v2/{blob.repo}/blobs/uploads/", blob.where)

    def _monolithic(self, blob: BlobUpload, location: str) -> bool:
        body: Body = blob.opener
        if blob.size <= _SMALL_BLOB:
            with blob.opener() as stream:
                body = stream.read()
        return self._finish(blob, location, body, blob.size)

    def _finish(self, blob: BlobUpload, location: str, body: Body, length: int) -> bool:
        return self._client.finish_upload(
            blob.repo, blob.where, location, blob.digest, body, length
        )

    def _chunked(self, blob: BlobUpload, location: str) -> bool:
        offset = 0
        while offset < blob.size:
            location, offset = self._chunk(blob, location, offset, blob.size)
        return self._finish(blob, location, b"", 0)

    def _follow(self, blob: BlobUpload, source: GrowingSource, location: str) -> bool:
        """``_chunked`` for a blob still being written: each chunk once the writer has it."""
        offset = 0
        try:
            while True:
                written = source.wait(offset + self.chunk_size)
                if offset < written:
                    location, offset = self._chunk(blob, location, offset, written)
                elif (done := source.result) is not None:
                    break
        except (RegistryError, _UploadLost):
            raise
        except Exception:  # the writer failed: nothing left to upload
            self._client.cancel_upload(blob.repo, blob.where, location)
            raise
        digest, size = done
        return self._finish(replace(blob, digest=digest, size=size), location, b"", 0)

    def _chunk(self, blob: BlobUpload, location: str, offset: int, end: int) -> tuple[str, int]:
        """PATCH the next chunk (at most ``chunk_size`` bytes of what is there up to ``end``);
        after a failure, ask the registry how much it holds and go on from there. Returns the
        next location and offset."""
        where = (location, offset)

        def send(attempt: Attempt) -> tuple[str, int]:
            nonlocal where
            try:
                if attempt.number:
                    where = self._client.upload_status(blob.repo, blob.where, where[0])
                    log.info("Resuming upload of %s at byte %d", blob.digest, where[1])
                url, start = where
                if start >= end:
                    return where
                length = min(self.chunk_size, end - start)

                def body() -> BinaryIO:
                    return _Window(blob.opener(), start, length)  # type: ignore[return-value]

                return self._client.upload_chunk(blob.repo, blob.where, url, body, start, length)
            except RegistryError as exc:
                if exc.code in UPLOAD_LOST_CODES:
                    raise _UploadLost(exc) from exc
                raise

        return self._retry.run(send, Request("PATCH", location, blob.where))


def _restarting(attempt: Callable[[Attempt], bool]) -> Callable[[Attempt], bool]:
    """``attempt`` with a lost session turned into the temporary error that restarts it."""

    def run(number: Attempt) -> bool:
        try:
            return attempt(number)
        except _UploadLost as lost:
            raise lost.error from lost

    return run
