"""``RegistryClient``: the distribution-API v2 operations kiln needs, for one registry.

Why: pulling a base image and pushing a result need only six operations (manifest get/put,
blob exists/fetch/upload). This module wires them over the auth and retry layers, follows
redirects without leaking credentials to other hosts, and verifies every digest.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

from kiln.closeable import Closeable
from kiln.errors import DigestMismatchError, RegistryError, Remedy
from kiln.net import Client, NetError, Response
from kiln.registry import _mediatypes as mt
from kiln.registry.auth import Authenticator, pull_scope, push_scope
from kiln.registry.credentials import Credentials
from kiln.registry.problems import response_error
from kiln.registry.reference import normalize_registry, registry_api_host, validate_digest
from kiln.registry.transport import DEFAULT_TIMEOUT, Body, HttpSession, RetryPolicy, Transport
from kiln.registry.upload import DEFAULT_CHUNK_SIZE, BlobUpload, GrowingSource, Uploader

CHUNK_SIZE = 1024 * 1024
_MAX_MANIFEST = 4 * 1024 * 1024  # the distribution spec's recommended manifest size limit
_MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_STREAM_ERRORS = (NetError, OSError)


class RegistryClient(Closeable):
    """Talks to one registry. Close it (or use ``with``) to release pooled connections.

    ``insecure`` means plain HTTP (Kaniko's ``--insecure``); ``skip_tls_verify`` keeps HTTPS
    but accepts any certificate; ``ca_file`` is the CA bundle to verify against (instead of
    the system store); ``client_cert`` is a (certificate, key) pair for mutual TLS.
    Blobs larger than ``chunk_size`` are uploaded in chunks. ``session`` (a ``kiln.net.Client``
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
        self._host = urlsplit(self.base_url).netloc
        verify: bool | str = str(ca_file) if ca_file is not None else True
        if skip_tls_verify:
            verify = False
        self._session: HttpSession = session or Client(
            verify=verify,
            cert=(str(client_cert[0]), str(client_cert[1])) if client_cert else None,
            user_agent=user_agent,
        )
        self._transport = Transport(
            self._session,
            policy=RetryPolicy(retries=retries),
            sleep=sleep,
            timeout=timeout,
        )
        self._auth = Authenticator(self._transport, self.registry, credentials)
        self._pinged = False
        self._ping_lock = threading.Lock()
        self._confirmed: set[tuple[str, str]] = set()  # (repo, digest): see confirmed()
        self._uploader = Uploader(
            self._request,
            self.blob_exists,
            self._transport.policy,
            sleep,
            chunk_size,
            credentials=self._auth,
        )

    def __repr__(self) -> str:
        return f"RegistryClient({self.base_url!r})"

    def close(self) -> None:
        """Release the connection pool."""
        self._session.close()

    # ---------------------------------------------------------------- manifests

    def get_manifest(self, repo: str, ref: str, accept: Sequence[str]) -> tuple[bytes, str, str]:
        """Fetch a manifest or index: (bytes as served, media type, sha256 digest of the bytes).

        When ``ref`` is a digest the bytes are verified against it; a ``Docker-Content-Digest``
        header that disagrees with the bytes is an error too.
        """
        where = self.describe(repo, ref)
        headers = {"Accept": ", ".join(accept)}
        path = f"/v2/{repo}/manifests/{ref}"
        attempt = 0
        while True:  # a body cut short is fetched again, as a dropped connection would be
            try:
                with self._request(
                    "GET", path, [pull_scope(repo)], where, headers=headers, stream=True
                ) as response:
                    if response.status_code != 200:
                        raise response_error(
                            response,
                            reference=where,
                            action="fetching the manifest",
                            credentials=self._auth,
                        )
                    data = _read_limited(response, _MAX_MANIFEST, where)
                    content_type = response.headers.get("Content-Type", "")
                    served_digest = response.headers.get("Docker-Content-Digest")
                break
            except _STREAM_ERRORS as exc:
                if attempt >= self._transport.policy.retries:
                    raise RegistryError(
                        f"download of the manifest was interrupted: {exc}",
                        reference=where,
                    ) from exc
                self._transport.sleep(self._transport.policy.delay(attempt))
                attempt += 1
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
        path = f"/v2/{repo}/manifests/{ref}"
        headers = {"Content-Type": media_type}
        with self._request(
            "PUT", path, [push_scope(repo)], where, headers=headers, body=data
        ) as response:
            if response.status_code not in (200, 201, 202):
                raise response_error(
                    response, reference=where, action="pushing the manifest", credentials=self._auth
                )
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
        with self._request("HEAD", path, [pull_scope(repo)], where) as response:
            if response.status_code == 200:
                self._confirmed.add((repo, digest))
                return True
            if response.status_code == 404:
                return False
            raise response_error(
                response, reference=where, action="checking for the blob", credentials=self._auth
            )

    def fetch_blob(self, repo: str, digest: str, dest: BinaryIO) -> int:
        """Stream blob ``digest`` into ``dest``, verifying it on the way; return its size.

        Raises ``DigestMismatchError`` if the content does not hash to ``digest``. A download
        interrupted midway is restarted when ``dest`` is seekable.
        """
        where = self.describe(repo, digest)
        algorithm = validate_digest(digest).split(":", 1)[0]
        start = dest.tell() if dest.seekable() else None
        attempt = 0
        while True:
            hasher = hashlib.new(algorithm)
            try:
                size = self._stream_blob(repo, digest, dest, hasher.update, where)
                break
            except _STREAM_ERRORS as exc:
                if start is None or attempt >= self._transport.policy.retries:
                    raise RegistryError(
                        f"download of blob {digest} was interrupted: {exc}",
                        reference=where,
                    ) from exc
                self._transport.sleep(self._transport.policy.delay(attempt))
                dest.seek(start)
                dest.truncate()
                attempt += 1
        actual = f"{algorithm}:{hasher.hexdigest()}"
        if actual != digest:
            raise DigestMismatchError(
                f"{where}: blob content hashes to {actual}, expected {digest}",
                hint="the registry or a proxy served corrupted data; retry or check the registry",
            )
        return size

    def _stream_blob(
        self,
        repo: str,
        digest: str,
        dest: BinaryIO,
        update: Callable[[bytes], object],
        where: str,
    ) -> int:
        path = f"/v2/{repo}/blobs/{digest}"
        with self._request("GET", path, [pull_scope(repo)], where, stream=True) as response:
            if response.status_code != 200:
                raise response_error(
                    response, reference=where, action="fetching the blob", credentials=self._auth
                )
            size = 0
            for chunk in response.iter_content(CHUNK_SIZE):
                update(chunk)
                dest.write(chunk)
                size += len(chunk)
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
        where = self.describe(repo, digest)
        scopes = [push_scope(repo)] + ([pull_scope(mount_from)] if mount_from else [])
        blob = BlobUpload(repo, digest, size, opener, scopes, where)
        if self._uploader.upload(blob, mount_from):
            self._confirmed.add((repo, digest))

    def upload_growing_blob(self, repo: str, source: GrowingSource) -> str:
        """Upload a blob while it is still being written; return its digest once done.

        ``source`` says how much is on disk and, at the end, the digest and size; chunks go up
        as they are written (``Uploader.upload_growing``). No HEAD first: the digest is not
        known before the last byte.
        """
        scopes = [push_scope(repo)]
        confirmed = self._uploader.upload_growing(source, repo, scopes, self.describe(repo))
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

    def check_login(self) -> None:
        """Raise ``AuthError`` unless the registry accepts this client's credentials."""
        where = self.registry
        with self._request("GET", "/v2/", [], where) as response:
            if response.status_code != 200:
                raise response_error(
                    response, reference=where, action="logging in", credentials=self._auth
                )

    def check_push(self, repo: str) -> None:
        """Fail early (``AuthError``) unless the credentials may push to ``repo``.

        Starts a blob upload, the first thing a push does, and cancels it again: a registry
        grants that only with push rights.
        """
        where = self.describe(repo)
        path = f"/v2/{repo}/blobs/uploads/"
        with self._request("POST", path, [push_scope(repo)], where, body=b"") as response:
            if response.status_code != 202:
                raise response_error(
                    response, reference=where, action="checking push access", credentials=self._auth
                )
            location = response.headers.get("Location")
            url = urljoin(response.url, location) if location else None
        if url is not None:
            with self._request("DELETE", url, [push_scope(repo)], where, retry=False):
                pass  # best effort: an abandoned upload is garbage-collected anyway

    # ---------------------------------------------------------------- plumbing

    def describe(self, repo: str, ref: str | None = None) -> str:
        """``registry/repo:tag`` or ``registry/repo@digest``, as used in error messages."""
        name = f"{self.registry}/{repo}"
        if ref is None:
            return name
        return f"{name}@{ref}" if ":" in ref else f"{name}:{ref}"

    def _ping(self, where: str) -> None:
        """Learn how the registry authenticates (GET /v2/) before the first real request."""
        with self._ping_lock:
            if self._pinged:
                return
            url = f"{self.base_url}/v2/"
            with self._follow("GET", url, {}, None, False, where) as response:
                if response.status_code == 401:
                    self._auth.update(response, [])
                elif response.status_code == 400 and url.startswith("http:"):
                    raise RegistryError(
                        "the registry rejected a plain-HTTP request (it probably speaks HTTPS)",
                        reference=where,
                        status=400,
                        hint=f"do not mark {self._host} insecure; trust its certificate with "
                        "{0} if needed",
                        remedies=(Remedy("registry_certificates", {self._host: "/path/ca.crt"}),),
                    )
                elif response.status_code not in (200, 404):
                    # 404: some proxies only serve repository paths; let real requests decide.
                    raise response_error(
                        response,
                        reference=where,
                        action="contacting the registry",
                        credentials=self._auth,
                    )
            self._pinged = True

    def _request(
        self,
        method: str,
        path_or_url: str,
        scopes: Iterable[str],
        where: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        stream: bool = False,
        retry: bool = True,
    ) -> Response:
        """Send with auth, re-authenticating once on 401 and following redirects."""
        self._ping(where)
        scopes = list(scopes)
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        for attempt in range(2):
            all_headers = {**(headers or {}), **self._auth.headers(scopes)}
            response = self._follow(method, url, all_headers, body, stream, where, retry)
            if (
                response.status_code != 401
                or attempt == 1
                or urlsplit(response.url).netloc != self._host
                or not self._auth.update(response, scopes)
            ):
                return response
            response.close()
        raise AssertionError("unreachable")

    def _follow(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body,
        stream: bool,
        where: str,
        retry: bool = True,
    ) -> Response:
        """Send, following redirects; credentials never go to a host other than the registry."""
        headers = dict(headers)
        for _ in range(_MAX_REDIRECTS + 1):
            if urlsplit(url).netloc != self._host or not url.startswith(self.base_url):
                headers.pop("Authorization", None)
            response = self._transport.request(
                method, url, reference=where, headers=headers, body=body, stream=stream, retry=retry
            )
            location = response.headers.get("Location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if response.status_code == 303 and method != "HEAD":
                method, body = "GET", None
        raise RegistryError("too many redirects", reference=where)


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
