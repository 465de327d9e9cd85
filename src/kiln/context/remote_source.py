"""ADD of an http(s) URL: download, verify, name and date the file the way Docker does.

Why its own module: the rules are specific to URLs. The content is never unpacked; the file
gets mode 0600 (BuildKit's default for HTTP sources) and, when the server sends one, its
Last-Modified time as mtime; `--checksum=sha256:...` must match or the build fails; with a
destination ending in `/` the file is named after the last segment of the URL path.
"""

from __future__ import annotations

import hashlib
import posixpath
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import BuildError, NetworkError
from kiln.net import Session

CHUNK = 1 << 16


@dataclass(frozen=True)
class Download:
    """A fetched URL: the file name it suggests and its Last-Modified time (if any)."""

    name: str
    mtime: float | None


def is_url(source: str) -> bool:
    """Is this ADD source a remote URL?"""
    return source.startswith(("http://", "https://"))


def url_filename(url: str) -> str:
    """The destination name Docker derives from a URL: the last non-empty path segment."""
    path = urllib.parse.urlparse(url).path
    name = posixpath.basename(urllib.parse.unquote(path).rstrip("/"))
    return name or "index.html"


def download(url: str, out: Path, checksum: str | None = None) -> Download:
    """Fetch url into out; raise BuildError on HTTP errors or a checksum mismatch."""
    digest = hashlib.sha256()
    try:
        with (
            Session(timeout=60.0) as client,
            client.request("GET", url, stream=True, follow_redirects=True) as response,
        ):
            if response.status_code >= 400:
                raise BuildError(
                    f"ADD {url}: server answered {response.status_code} {response.reason}",
                    hint="check that the URL is reachable from the build",
                )
            with out.open("wb") as sink:
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    sink.write(chunk)
            modified = response.headers.get("Last-Modified")
    except NetworkError as exc:
        raise BuildError(f"ADD {url}: download failed: {exc}") from exc
    if checksum is not None:
        algorithm, _, expected = checksum.partition(":")
        if algorithm != "sha256" or not expected:
            raise BuildError(
                f"ADD --checksum={checksum}: unsupported checksum",
                hint="use --checksum=sha256:<64 hex digits>",
            )
        if digest.hexdigest() != expected.lower():
            raise BuildError(
                f"ADD {url}: digest mismatch: expected sha256:{expected}, "
                f"got sha256:{digest.hexdigest()}"
            )
    mtime = None
    if modified:
        import email.utils  # only for a Last-Modified header (about 6 ms to import)

        try:
            mtime = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            mtime = None
    return Download(url_filename(url), mtime)
