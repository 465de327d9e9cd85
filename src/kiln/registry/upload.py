"""Blob uploads: monolithic for small blobs, chunked (POST, PATCH..., PUT) for large ones.

Why its own module: an upload is a small protocol of its own. Large layers go up in chunks so a
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

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import BinaryIO, Protocol, cast
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from kiln.errors import RegistryError
from kiln.net import NetError, Response
from kiln.registry.problems import CredentialReport, response_error
from kiln.registry.transport import RETRYABLE_STATUS, Body, RetryPolicy

log = logging.getLogger("kiln")

#: Blobs up to this size go up in one PUT; larger ones in PATCH chunks of this size.
DEFAULT_CHUNK_SIZE = 16 * 1024 * 1024
_SMALL_BLOB = 1024 * 1024  # uploaded from memory: retries are trivial, empty blobs work
_RESTART_CODES = frozenset({"BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID"})


class Sender(Protocol):
    """How the uploader sends one authenticated request (``RegistryClient._request``)."""

    def __call__(
        self,
        method: str,
        path_or_url: str,
        scopes: list[str],
        where: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        retry: bool = True,
    ) -> Response: ...


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
    """The registry no longer knows the upload session; start a new one."""


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
    scopes: list[str]
    where: str


class Uploader:
    """Runs uploads for one client: chooses monolithic or chunked, resumes, restarts."""

    def __init__(
        self,
        send: Sender,
        exists: Callable[[str, str], bool],
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        *,
        credentials: CredentialReport | None = None,
    ) -> None:
        self._send = send
        self._credentials = credentials
        self._exists = exists
        self._policy = policy
        self._sleep = sleep
        self.chunk_size = chunk_size

    def upload(self, blob: BlobUpload, mount_from: str | None = None) -> bool:
        """Upload ``blob``, restarting the session on transient failures within the budget.

        Returns whether the registry confirmed it holds the blob under ``blob.digest`` (a
        mount, a final response naming that digest, or a HEAD after a lost answer); False
        means it accepted the upload without saying so.
        """
        attempt = 0
        while True:
            try:
                location = self._start(blob, mount_from)
                if location is None:
                    return True  # mounted from another repository
                if blob.size > self.chunk_size:
                    return self._chunked(blob, location)
                return self._monolithic(blob, location)
            except (RegistryError, _UploadLost) as exc:
                if self._after_failure(exc, attempt, blob, blob.digest):
                    return True
                attempt += 1

    def upload_growing(
        self, source: GrowingSource, repo: str, scopes: list[str], where: str
    ) -> bool:
        """Upload a blob while it is written: chunks as they reach the disk, the closing PUT
        once ``source`` is complete. Returns as ``upload``; the digest is ``source.result``.

        If the writer fails, the upload session is cancelled and its error propagates.
        """

        def opener() -> BinaryIO:
            return cast(BinaryIO, _SourceStream(source))

        blob = BlobUpload(repo, "(being written)", 0, opener, scopes, where)
        attempt = 0
        while True:
            try:
                location = self._start(blob, None)
                assert location is not None  # no mount was asked for
                return self._follow(blob, source, location)
            except (RegistryError, _UploadLost) as exc:
                done = source.result
                if self._after_failure(exc, attempt, blob, done[0] if done else None):
                    return True
                attempt += 1

    def _after_failure(
        self, exc: RegistryError | _UploadLost, attempt: int, blob: BlobUpload, digest: str | None
    ) -> bool:
        """Raise unless a new attempt may follow; True if the registry has the blob anyway
        (the last attempt completed although its answer was lost), else wait before the next."""
        if not _restartable(exc) or attempt >= self._policy.retries:
            if isinstance(exc, _UploadLost):
                raise RegistryError(
                    f"upload of blob {digest or blob.digest} was lost by the registry",
                    reference=blob.where,
                ) from exc
            raise exc
        if digest is not None and self._exists(blob.repo, digest):
            return True
        log.warning("Upload of %s failed (%s); starting it again", digest or blob.digest, exc)
        self._sleep(self._policy.delay(attempt))
        return False

    def _start(self, blob: BlobUpload, mount_from: str | None) -> str | None:
        query = {"mount": blob.digest, "from": mount_from} if mount_from else {}
        path = f"/v2/{blob.repo}/blobs/uploads/" + (f"?{urlencode(query)}" if query else "")
        with self._send("POST", path, blob.scopes, blob.where, body=b"") as response:
            if response.status_code == 201 and mount_from:
                return None
            if response.status_code != 202 or "Location" not in response.headers:
                raise response_error(
                    response,
                    reference=blob.where,
                    action="starting the upload",
                    credentials=self._credentials,
                )
            return urljoin(response.url, response.headers["Location"])

    def _monolithic(self, blob: BlobUpload, location: str) -> bool:
        body: Body = blob.opener
        if blob.size <= _SMALL_BLOB:
            with blob.opener() as stream:
                body = stream.read()
        return self._finish(blob, location, body, blob.size)

    def _finish(self, blob: BlobUpload, location: str, body: Body, length: int) -> bool:
        """The closing PUT; True if the registry's answer names the blob's digest."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        url = with_query(location, {"digest": blob.digest})
        with self._send("PUT", url, blob.scopes, blob.where, headers=headers, body=body) as done:
            if done.status_code not in (201, 204):
                raise response_error(
                    done,
                    reference=blob.where,
                    action="uploading the blob",
                    credentials=self._credentials,
                )
            return done.headers.get("Docker-Content-Digest") == blob.digest

    def _chunked(self, blob: BlobUpload, location: str) -> bool:
        offset = failures = 0
        while offset < blob.size:
            length = min(self.chunk_size, blob.size - offset)
            location, offset, failures = self._chunk(blob, location, offset, length, failures)
        return self._finish(blob, location, b"", 0)

    def _follow(self, blob: BlobUpload, source: GrowingSource, location: str) -> bool:
        """``_chunked`` for a blob still being written: each chunk once the writer has it."""
        offset = failures = 0
        try:
            while True:
                written = source.wait(offset + self.chunk_size)
                if offset < written:
                    length = min(self.chunk_size, written - offset)
                    location, offset, failures = self._chunk(
                        blob, location, offset, length, failures
                    )
                elif (done := source.result) is not None:
                    break
        except (RegistryError, _UploadLost):
            raise
        except Exception:  # the writer failed: nothing left to upload
            self._cancel(blob, location)
            raise
        digest, size = done
        return self._finish(replace(blob, digest=digest, size=size), location, b"", 0)

    def _chunk(
        self, blob: BlobUpload, location: str, offset: int, length: int, failures: int
    ) -> tuple[str, int, int]:
        """PATCH one chunk; after a failure ask the registry where to resume, within budget.
        Returns the next location and offset, and the failures so far."""
        try:
            location, offset = self._patch(blob, location, offset, length)
        except (NetError, OSError, _Transient) as exc:
            if failures >= self._policy.retries:
                raise RegistryError(
                    f"chunked upload of blob {blob.digest} kept failing at byte {offset}: {exc}",
                    reference=blob.where,
                ) from exc
            self._sleep(self._policy.delay(failures))
            failures += 1
            location, offset = self._status(blob, location)
            log.info("Resuming upload of %s at byte %d", blob.digest, offset)
        return location, offset, failures

    def _cancel(self, blob: BlobUpload, location: str) -> None:
        """Drop an upload session (best effort: the registry expires it anyway)."""
        with contextlib.suppress(RegistryError, NetError):
            self._send("DELETE", location, blob.scopes, blob.where, retry=False).close()

    def _patch(self, blob: BlobUpload, location: str, offset: int, length: int) -> tuple[str, int]:
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + length - 1}",
            "Content-Length": str(length),
        }

        def body() -> BinaryIO:
            return _Window(blob.opener(), offset, length)  # type: ignore[return-value]

        with self._send(
            "PATCH", location, blob.scopes, blob.where, headers=headers, body=body, retry=False
        ) as response:
            if response.status_code in RETRYABLE_STATUS:
                raise _Transient(f"HTTP {response.status_code}")
            if response.status_code != 202:
                raise response_error(
                    response,
                    reference=blob.where,
                    action="uploading a chunk",
                    credentials=self._credentials,
                )
            return _next(response, location, offset + length)

    def _status(self, blob: BlobUpload, location: str) -> tuple[str, int]:
        """Ask the registry how much of the upload it holds: (next location, next offset)."""
        with self._send("GET", location, blob.scopes, blob.where) as response:
            if response.status_code in (400, 404):
                raise _UploadLost(f"HTTP {response.status_code}")
            if response.status_code not in (200, 204):
                raise response_error(
                    response,
                    reference=blob.where,
                    action="resuming the upload",
                    credentials=self._credentials,
                )
            return _next(response, location, 0)


class _Transient(Exception):
    """A chunk failed in a way worth retrying."""


def _next(response: Response, location: str, fallback: int) -> tuple[str, int]:
    """The next upload URL and offset from a 202/204 (``Location`` and ``Range: 0-N``)."""
    new_location = urljoin(response.url, response.headers.get("Location") or location)
    reported = response.headers.get("Range", "")
    _, _, end = reported.partition("-")
    offset = int(end) + 1 if end.strip().isdigit() else fallback
    return new_location, offset


def _restartable(exc: BaseException) -> bool:
    if isinstance(exc, _UploadLost):
        return True
    assert isinstance(exc, RegistryError)
    if exc.code in _RESTART_CODES:
        return True
    return exc.status is None or exc.status in RETRYABLE_STATUS


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))
