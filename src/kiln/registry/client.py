"""``RegistryClient``: the distribution-API v2 operations kiln needs, for one registry.

Why: pulling a base image and pushing a result need a handful of operations (manifest get/put,
blob exists/fetch, the steps of a blob upload). This module is the top of the transport stack,
each layer wrapping the next: the HTTP session (``kiln.net``: pooling, proxies, TLS, redirects)
-> the auth layer (``registry.session``) -> the retry layer (``registry.retry``) -> here. It
turns answers into results or ``RegistryError``s and verifies every digest; the upload strategy
(monolithic, chunked, resumed, restarted) is ``registry.upload``'s, built on the public upload
steps below.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode, urljoin

from kiln.closeable import Closeable
from kiln.errors import DigestMismatchError, NetworkError, RegistryError
from kiln.net import DEFAULT_TIMEOUT, Body, Response, Session
from kiln.registry import _mediatypes as mt
from kiln.registry.auth import pull_scope, push_scope
from kiln.registry.credentials import Credentials
from kiln.registry.problems import response_error
from kiln.registry.reference import normalize_registry, registry_api_host, validate_digest
from kiln.registry.retry import Attempt, Retrying, RetryPolicy
from kiln.registry.session import AuthenticatedSession, HttpSession, Request
from kiln.registry.upload import DEFAULT_CHUNK_SIZE, BlobUpload, GrowingSource, Uploader

CHUNK_SIZE = 1024 * 1024
_MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended manifest size limit


class RegistryClient(Closeable):
    """Talks to one registry. Close it (or use ``with``) to release pooled connections.

    ``insecure`` means plain HTTP (Kaniko's ``--insecure``); ``skip_tls_verify`` keeps HTTPS
    but accepts any certificate; ``ca_file`` is the CA bundle to verify against (instead of
    the system store); ``client_cert`` is a (certificate, key) pair for mutual TLS.
    Blobs larger than ``chunk_size`` are uploaded in chunks. ``session`` (a ``kiln.net.Session``
    unless given) and ``sleep`` are for tests (a scripted transport, no real waiting).
    One client may be used from several threads.
    """

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool = False,
        skip_tls_verify: bool = False,
        ca_file: Path | None = None,
        client_cert: tuple[Path, Path] | None = None,
        credentials: Credentials | None = None,
        retries: int = 3,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        user_agent: str = "kiln/0.1",
        session: HttpSession | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.registry = normalize_registry(registry)
        scheme = "http" if insecure else "https"
        self.base_url = f"{scheme}://{registry_api_host(self.registry)}"
        verify: bool | str = str(ca_file) if ca_file is not None else True
        if skip_tls_verify:
            verify = False
        self._session: HttpSession = session or Session(
            verify=verify,
            cert=(str(client_cert[0]), str(client_cert[1])) if client_cert else None,
            user_agent=user_agent,
        )
        authenticated = AuthenticatedSession(
            self._session, self.base_url, self.registry, credentials, timeout
        )
        self._auth = authenticated.auth
        self._retry = Retrying(authenticated, RetryPolicy(retries=retries), sleep)
        self._confirmed: set[tuple[str, str]] = set()  # (repo, digest): see confirmed()
        self._uploader = Uploader(self, self._retry, chunk_size)

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    def close(self) -> None:
        """Release the connection pool."""
        self._session.close()

    # ---------------------------------------------------------------- manifests

    def get_manifest(self, repo: str, ref: str, accept: Sequence[str]) -> tuple[bytes, str, str]:
        """Fetch a manifest or index: (bytes as served, media type, sha256 digest of the bytes).

        When ``ref`` is a digest the bytes are verified against it; a ``Docker-Content-Digest``
        header that disagrees with the bytes is an error too. A body cut short is fetched again.
        """
        where = self.describe(repo, ref)
        request = Request(
            "GET", f"/v2/{repo}/manifests/{ref}", where, (pull_scope(repo),),
            {"Accept": ", ".join(accept)}, stream=True,
        )  # fmt: skip

        def fetch(attempt: Attempt) -> tuple[bytes, str, str | None]:
            with self._retry.send(request, retry=False) as response:
                if response.status_code != 200:
                    raise self._failed(response, where, "fetching the manifest")
                data = _read_limited(response, _MAX_MANIFEST, where)
                return (
                    data,
                    response.headers.get("Content-Type", ""),
                    response.headers.get("Docker-Content-Digest"),
                )

        data, content_type, served_digest = self._retry.run(fetch, request)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if ":" in ref:
            _verify_bytes(data, ref, where)
        if served_digest and served_digest.startswith("sha256:") and served_digest != digest:
            raise DigestMismatchError(
                f"{where}: manifest bytes hash to {digest} but the registry says {served_digest}"
            )
        return data, manifest_media_type(data, content_type), digest

    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """Upload a manifest (or index) under ``ref`` (tag or digest); return its digest."""
        where = self.describe(repo, ref)
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        request = Request(
            "PUT", f"/v2/{repo}/manifests/{ref}", where, (push_scope(repo),),
            {"Content-Type": media_type}, data,
        )  # fmt: skip
        with self._retry.send(request) as response:
            if response.status_code not in (200, 201, 202):
                raise self._failed(response, where, "pushing the manifest")
            served = response.headers.get("Docker-Content-Digest")
        if served and served.startswith("sha256:") and served != digest:
            raise DigestMismatchError(
                f"{where}: registry stored the manifest as {served}, expected {digest}"
            )
        return digest

    # ---------------------------------------------------------------- blobs

    def blob_exists(self, repo: str, digest: str) -> bool:
        """True if the registry has blob ``digest`` in ``repo`` (a HEAD request)."""
        where = self.describe(repo, digest)
        path = f"/v2/{repo}/blobs/{validate_digest(digest)}"
        with self._retry.send(Request("HEAD", path, where, (pull_scope(repo),))) as response:
            if response.status_code == 200:
                self._confirmed.add((repo, digest))
                return True
            if response.status_code == 404:
                return False
            raise self._failed(response, where, "checking for the blob")

    def fetch_blob(self, repo: str, digest: str, dest: BinaryIO) -> int:
        """Stream blob ``digest`` into ``dest``, verifying it on the way; return its size.

        Raises ``DigestMismatchError`` if the content does not hash to ``digest``. A download
        interrupted midway is restarted when ``dest`` is seekable.
        """
        where = self.describe(repo, digest)
        algorithm = validate_digest(digest).split(":", 1)[0]
        start = dest.tell() if dest.seekable() else None
        request = Request(
            "GET", f"/v2/{repo}/blobs/{digest}", where, (pull_scope(repo),), stream=True
        )

        def fetch(attempt: Attempt) -> tuple[int, str]:
            if start is not None:
                dest.seek(start)
                dest.truncate()
            hasher = hashlib.new(algorithm)
            size = 0
            with self._retry.send(request, retry=False) as response:
                if response.status_code != 200:
                    raise self._failed(response, where, "fetching the blob")
                try:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        hasher.update(chunk)
                        dest.write(chunk)
                        size += len(chunk)
                except NetworkError as exc:
                    if start is None and size:
                        raise RegistryError(
                            f"download of blob {digest} was interrupted after {size} bytes "
                            f"(not restarted: the destination cannot seek back): {exc}",
                            reference=where,
                        ) from exc
                    raise
            return size, f"{algorithm}:{hasher.hexdigest()}"

        size, actual = self._retry.run(fetch, request)
        if actual != digest:
            raise DigestMismatchError(
                f"{where}: blob content hashes to {actual}, expected {digest}",
                hint="the registry or a proxy served corrupted data; retry or check the registry",
            )
        return size

    def upload_blob(
        self,
        repo: str,
        digest: str,
        size: int,
        opener: Callable[[], BinaryIO],
        mount_from: str | None = None,
    ) -> None:
        """Upload a blob unless the registry already has it (HEAD first).

        ``opener`` returns a fresh stream of the blob each call (so retries can resend it).
        ``mount_from`` names a repository on the same registry to mount the blob from instead
        of uploading it, when the registry allows.
        """
        validate_digest(digest)
        if self.blob_exists(repo, digest):
            return
        blob = BlobUpload(repo, digest, size, opener, self.describe(repo, digest))
        if self._uploader.upload(blob, mount_from):
            self._confirmed.add((repo, digest))

    def upload_growing_blob(self, repo: str, source: GrowingSource) -> str:
        """Upload a blob while it is still being written; return its digest once done.

        ``source`` says how much is on disk and, at the end, the digest and size; chunks go up
        as they are written (``Uploader.upload_growing``). No HEAD first: the digest is not
        known before the last byte.
        """
        confirmed = self._uploader.upload_growing(source, repo, self.describe(repo))
        result = source.result
        assert result is not None  # the upload ends only after the writer finished
        if confirmed:
            self._confirmed.add((repo, result[0]))
        return result[0]

    def confirmed(self, repo: str, digest: str) -> bool:
        """True if the registry already said, to this client, that ``repo`` has ``digest``.

        That is a HEAD answered 200, or an upload (or mount) it acknowledged under that digest.
        A push checks this before asking again, so a blob the pre-upload sent moments ago costs
        no second HEAD. Should a registry drop a blob in between anyway, it refuses the
        manifest that names it (``MANIFEST_BLOB_UNKNOWN``) and no tag moves.
        """
        return (repo, digest) in self._confirmed

    # ---------------------------------------------------------------- upload steps

    def start_upload(
        self,
        repo: str,
        where: str,
        *,
        mount: tuple[str, str] | None = None,
        action: str = "starting the upload",
    ) -> str | None:
        """Open an upload session in ``repo``: its URL, or None when ``mount`` (digest, source
        repository) was mounted from the other repository instead. ``action`` names the step
        in errors."""
        query = f"?{urlencode({'mount': mount[0], 'from': mount[1]})}" if mount else ""
        scopes = (push_scope(repo),) + ((pull_scope(mount[1]),) if mount else ())
        request = Request("POST", f"/v2/{repo}/blobs/uploads/{query}", where, scopes, body=b"")
        with self._retry.send(request) as response:
            if response.status_code == 201 and mount:
                return None
            location = response.headers.get("Location")
            if response.status_code != 202 or not location:
                raise self._failed(response, where, action)
            return urljoin(response.url, location)

    def upload_chunk(
        self, repo: str, where: str, location: str, body: Body, offset: int, length: int
    ) -> tuple[str, int]:
        """PATCH ``length`` bytes (``body``) at ``offset`` once (the uploader resumes a failed
        chunk itself); return the next upload URL and offset."""
        headers = {
            "Content-Type": "application/octet-stream",
            "Content-Range": f"{offset}-{offset + length - 1}",
            "Content-Length": str(length),
        }
        request = Request("PATCH", location, where, (push_scope(repo),), headers, body)
        with self._retry.send(request, retry=False) as response:
            if response.status_code != 202:
                raise self._failed(response, where, "uploading a chunk")
            return _next_offset(response, location, offset + length)

    def upload_status(self, repo: str, where: str, location: str) -> tuple[str, int]:
        """How much of an upload the registry holds: (next upload URL, next offset). A session
        the registry no longer knows is a temporary error coded ``BLOB_UPLOAD_UNKNOWN``."""
        with self._retry.send(Request("GET", location, where, (push_scope(repo),))) as response:
            if response.status_code in (400, 404):
                status = response.status_code
                response.close()
                raise RegistryError(
                    "the registry lost the upload session",
                    reference=where,
                    status=status,
                    code="BLOB_UPLOAD_UNKNOWN",
                    temporary=True,
                )
            if response.status_code not in (200, 204):
                raise self._failed(response, where, "resuming the upload")
            return _next_offset(response, location, 0)

    def finish_upload(
        self, repo: str, where: str, location: str, digest: str, body: Body, length: int
    ) -> bool:
        """The closing PUT naming ``digest``; True if the registry's answer names it back."""
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(length)}
        url = with_query(location, {"digest": digest})
        request = Request("PUT", url, where, (push_scope(repo),), headers, body)
        with self._retry.send(request) as response:
            if response.status_code not in (201, 204):
                raise self._failed(response, where, "uploading the blob")
            return response.headers.get("Docker-Content-Digest") == digest

    def cancel_upload(self, repo: str, where: str, location: str) -> None:
        """Drop an upload session (best effort: the registry expires it anyway)."""
        try:
            request = Request("DELETE", location, where, (push_scope(repo),))
            self._retry.send(request, retry=False).close()
        except (RegistryError, NetworkError):
            pass

    # ---------------------------------------------------------------- access checks

    def check_login(self) -> None:
        """Raise ``AuthError`` unless the registry accepts this client's credentials."""
        with self._retry.send(Request("GET", "/v2/", self.registry)) as response:
            if response.status_code != 200:
                raise self._failed(response, self.registry, "logging in")

    def check_push(self, repo: str) -> None:
        """Fail early (``AuthError``) unless the credentials may push to ``repo``.

        Starts a blob upload, the first thing a push does, and cancels it again: a registry
        grants that only with push rights.
        """
        where = self.describe(repo)
        location = self.start_upload(repo, where, action="checking push access")
        if location is not None:
            self.cancel_upload(repo, where, location)

    # ---------------------------------------------------------------- plumbing

    def describe(self, repo: str, ref: str | None = None) -> str:
        """``registry/repo:tag`` or ``registry/repo@digest``, as used in error messages."""
        name = f"{self.registry}/{repo}"
        if ref is None:
            return name
        return f"{name}@{ref}" if ":" in ref else f"{name}:{ref}"

    def _failed(self, response: Response, where: str, action: str) -> RegistryError:
        return response_error(response, reference=where, action=action, credentials=self._auth)


def _next_offset(response: Response, location: str, fallback: int) -> tuple[str, int]:
    """The next upload URL and offset from a 202/204 (``Location`` and ``Range: 0-N``)."""
    new_location = urljoin(response.url, response.headers.get("Location") or location)
    _, _, end = response.headers.get("Range", "").partition("-")
    return new_location, int(end) + 1 if end.strip().isdigit() else fallback


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to whatever query it already has."""
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _read_limited(response: Response, limit: int, where: str) -> bytes:
    """The whole body, refusing (without reading it all) one larger than ``limit``."""
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_content(64 * 1024):
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise RegistryError(f"manifest larger than {limit} bytes", reference=where)
    return b"".join(chunks)


def _verify_bytes(data: bytes, digest: str, where: str) -> None:
    algorithm, _, expected = validate_digest(digest).partition(":")
    try:
        actual = hashlib.new(algorithm, data).hexdigest()
    except ValueError:
        raise RegistryError(
            f"unsupported digest algorithm {algorithm!r}", reference=where
        ) from None
    if actual != expected:
        raise DigestMismatchError(
            f"{where}: manifest content hashes to {algorithm}:{actual}, expected {digest}"
        )


def manifest_media_type(data: bytes, content_type: str) -> str:
    """The manifest's media type: the Content-Type, or sniffed from the JSON when generic."""
    declared = content_type.split(";", 1)[0].strip()
    if declared and declared not in ("application/json", "text/plain", "application/octet-stream"):
        return declared
    try:
        document = json.loads(data)
    except ValueError:
        return declared
    if not isinstance(document, dict):
        return declared
    if document.get("schemaVersion") == 1:
        return mt.DOCKER_SCHEMA1_SIGNED if "signatures" in document else mt.DOCKER_SCHEMA1
    if isinstance(document.get("mediaType"), str):
        return str(document["mediaType"])
    if "manifests" in document:
        return mt.OCI_INDEX
    if "config" in document:
        return mt.OCI_MANIFEST
    return declared
