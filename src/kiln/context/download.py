"""Fetch a context archive that is not a local file: an ``http(s)://`` URL, stdin, a bucket.

Why one module: each source ends the same way, as a local archive file that ``safetar``
extracts. Downloads stream to disk (a context may be larger than memory) and fail with the URL
(credentials removed) and the HTTP status.

Cloud buckets (``s3://``, ``gs://``, ``https://ACCOUNT.blob.core.windows.net/...``) use their
vendor SDKs, which are optional extras (``pip install 'kiln-builder[s3]'``, ``[gcs]``,
``[azure]``): they are imported only when such a context is used, and a missing SDK is an
error that names the extra to install.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from kiln.context.giturl import redact_url
from kiln.errors import ContextError, NetworkError
from kiln.net import Session

_CHUNK = 1 << 20
_TIMEOUT = (30.0, 300.0)  # connect, read (seconds)


def download_url(url: str, dest: Path) -> None:
    """Stream ``url`` into ``dest``; any non-2xx status is an error naming the URL."""
    shown = redact_url(url)
    try:
        with (
            Session(timeout=_TIMEOUT) as client,
            client.request("GET", url, stream=True, follow_redirects=True) as response,
        ):
            if not response.ok:
                raise ContextError(
                    f"cannot download build context {shown}: HTTP {response.status_code}",
                    hint="check the URL and that the file is readable without other credentials",
                )
            with open(dest, "wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
    except NetworkError as exc:
        raise ContextError(f"cannot download build context {shown}: {exc}") from exc


def copy_stdin(dest: Path, stream: BinaryIO | None = None) -> None:
    """Save the archive arriving on standard input (``tar://stdin`` or ``-``)."""
    source = stream if stream is not None else sys.stdin.buffer
    with open(dest, "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)
    if dest.stat().st_size == 0:
        raise ContextError(
            "the build context on standard input is empty",
            hint="pipe a tar archive into kiln, e.g. tar -C DIR -cz . | kiln build -",
        )


def _sdk(module: str, extra: str, scheme: str) -> ModuleType:
    """Import a cloud SDK on first use; say which extra provides it when it is missing."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ContextError(
            f"{scheme} build contexts need the {module.split('.')[0]} package, "
            "which is not installed",
            hint=f"pip install 'kiln-builder[{extra}]'",
        ) from exc


def is_azure_blob_url(spec: str) -> bool:
    """Kaniko's Azure contexts are https URLs on ``*.blob.core.windows.net``."""
    host = urlsplit(spec).hostname or ""
    return spec.lower().startswith("https://") and host.endswith(".blob.core.windows.net")


def download_s3(spec: str, dest: Path) -> None:
    """``s3://BUCKET/KEY``; AWS settings (region, keys) come from the environment.

    As in Kaniko, ``S3_ENDPOINT`` points at another S3-compatible service and
    ``S3_FORCE_PATH_STYLE=true`` uses path-style URLs (MinIO and friends).
    """
    boto3: Any = _sdk("boto3", "s3", "s3://")
    bucket, key = _bucket_and_key(spec)
    try:
        config = None
        if os.environ.get("S3_FORCE_PATH_STYLE", "").lower() == "true":
            botocore_config: Any = _sdk("botocore.config", "s3", "s3://")
            config = botocore_config.Config(s3={"addressing_style": "path"})
        client = boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT"), config=config)
        client.download_file(bucket, key, str(dest))
    except Exception as exc:  # the SDK's own tree; chained for the details
        raise ContextError(f"cannot download build context {spec}: {exc}") from exc


def download_gcs(spec: str, dest: Path) -> None:
    """``gs://BUCKET/OBJECT`` with Google's application-default credentials."""
    storage: Any = _sdk("google.cloud.storage", "gcs", "gs://")
    bucket, key = _bucket_and_key(spec)
    try:
        storage.Client().bucket(bucket).blob(key).download_to_filename(str(dest))
    except Exception as exc:
        raise ContextError(f"cannot download build context {spec}: {exc}") from exc


def download_azure(spec: str, dest: Path) -> None:
    """An Azure blob URL; the account key comes from ``AZURE_STORAGE_ACCESS_KEY``."""
    blob: Any = _sdk("azure.storage.blob", "azure", "Azure blob")
    try:
        client = blob.BlobClient.from_blob_url(
            spec, credential=os.environ.get("AZURE_STORAGE_ACCESS_KEY")
        )
        with open(dest, "wb") as out:
            client.download_blob().readinto(out)
    except Exception as exc:
        raise ContextError(f"cannot download build context {redact_url(spec)}: {exc}") from exc


def _bucket_and_key(spec: str) -> tuple[str, str]:
    parts = urlsplit(spec)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise ContextError(
            f"build context {spec!r} names no object", hint="use s3://BUCKET/PATH/context.tar.gz"
        )
    return parts.netloc, key
