"""Blob uploads: monolithic for small blobs, chunked (POST, PATCH..., PUT) for large ones.

Why its own module: an upload is a small protocol of its own. Large layers go up in chunks so a
dropped connection costs one chunk, not the whole layer: after a failed PATCH the registry is
asked how much it holds (``GET`` on the upload URL, ``Range: 0-N``) and the upload resumes from
there. When the registry has lost the session (the distribution registry cancels an upload whose
offset no longer matches its state token) the whole upload starts again, up to the retry budget.
Blob bytes are always streamed from the caller's opener, never held in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests

from kiln.errors import RegistryError
from kiln.registry.problems import response_error
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
    ) -> requests.Response: ...


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
    ) -> None:
        self._send = send
        self._exists = exists
        self._policy = policy
        self._sleep = sleep
        self.chunk_size = chunk_size

    def upload(self, blob: BlobUpload, mount_from: str | None = None) -> None:
        """Upload ``blob``, restarting the session on transient failures within the budget."""
        attempt = 0
        while True:
            try:
                location = self._start(blob, mount_from)
                if location is None:
                    return  # mounted from another repository
                if blob.size > self.chunk_size:
                    self._chunked(blob, location)
                else:
                    self._monolithic(blob, location)
                return
            except (RegistryError, _UploadLost) as exc:
                if not _restartable(exc) or attempt >= self._policy.retries:
                    if isinstance(exc, _UploadLost):
                        raise RegistryError(
                            f"upload of blob {blob.digest} was lost by the registry",
                            reference=blob.where,
                        ) from exc
                    raise
                if self._exists(blob.repo, blob.digest):
                    return  # the last attempt completed although its answer was lost
                log.warning("Upload of %s failed (%s); starting it again", blob.digest, exc)
                self._sleep(self._policy.delay(attempt))
                attempt += 1

    def _start(self, blob: BlobUpload, mount_from: str | None) -> str | None:
        query = {"mount": blob.digest, "from": mount_from} if mount_from else {}
        path = f"/v2/{blob.repo}/blobs/uploads/" + (f"?{urlencode(query)}" if query else "")
        with self._send("POST", path, blob.scopes, blob.where, body=b"") as response:
            if response.status_code == 201 and mount_from:
                return None
            if response.status_code != 202 or "Location" not in response.headers:
                raise response_error(response, reference=blob.where, action="starting the upload")
            return urljoin(response.url, response.headers["Location"])

    def _monolithic(self, blob: BlobUpload, location: str) -> None:
        body: Body = blob.opener
        if blob.size <= _SMALL_BLOB:
            with blob.opener() as stream:
                body = stream.read()
        self._finish(blob, location, body, blob.size)

    def _finish(self, blob: BlobUpload, location: str, body: Body, length: int) -> None:
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        url = with_query(location, {"digest": blob.digest})
        with self._send("PUT", url, blob.scopes, blob.where, headers=headers, body=body) as done:
            if done.status_code not in (201, 204):
                raise response_error(done, reference=blob.where, action="uploading the blob")

    def _chunked(self, blob: BlobUpload, location: str) -> None:
        offset = 0
        failures = 0
        while offset < blob.size:
            length = min(self.chunk_size, blob.size - offset)
            try:
                location, offset = self._patch(blob, location, offset, length)
            except (requests.RequestException, OSError, _Transient) as exc:
                if failures >= self._policy.retries:
                    raise RegistryError(
                        f"chunked upload of blob {blob.digest} kept failing at byte {offset}: "
                        f"{exc}",
                        reference=blob.where,
                    ) from exc
                self._sleep(self._policy.delay(failures))
                failures += 1
                location, offset = self._status(blob, location)
                log.info("Resuming upload of %s at byte %d", blob.digest, offset)
        self._finish(blob, location, b"", 0)

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
                raise response_error(response, reference=blob.where, action="uploading a chunk")
            return _next(response, location, offset + length)

    def _status(self, blob: BlobUpload, location: str) -> tuple[str, int]:
        """Ask the registry how much of the upload it holds: (next location, next offset)."""
        with self._send("GET", location, blob.scopes, blob.where) as response:
            if response.status_code in (400, 404):
                raise _UploadLost(f"HTTP {response.status_code}")
            if response.status_code not in (200, 204):
                raise response_error(response, reference=blob.where, action="resuming the upload")
            return _next(response, location, 0)


class _Transient(Exception):
    """A chunk failed in a way worth retrying."""


def _next(response: requests.Response, location: str, fallback: int) -> tuple[str, int]:
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
