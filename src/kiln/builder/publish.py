"""Pushing a finished image: blobs in parallel, verified, then the manifest; plus push checks.

Why its own module: a push must be atomic from the registry's point of view. Every blob is
uploaded (or found present) and known present *before* the manifest goes up, so a failed push
never leaves a tag pointing at missing blobs. Known present means the registry said so: a HEAD
answered 200, or it acknowledged the upload under the blob's digest (else a HEAD checks). A blob
already there (shared with another image) costs one HEAD; one the pre-upload sent while the
build ran (see `preupload`) costs nothing more, its upload's answer having confirmed it. A layer
still in a registry (`remote_layer.RemoteLayer`: a base image's, a cache hit's) is mounted from
its repository on the same registry, or streamed from its registry, never downloaded first. The same
rules serve `kiln build` and `kiln push`, so they live here and not in the build loop.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiln.builder.cancel import in_this_build
from kiln.builder.registries import TRANSFER_THREADS, RegistryPool
from kiln.builder.remote_layer import blob_opener, mount_source
from kiln.errors import AuthError, RegistryError, Remedy, UsageError
from kiln.image import Image, mediatypes
from kiln.registry import Reference

log = logging.getLogger("kiln")

_IMMUTABLE_CODES = frozenset({"TAG_INVALID"})


@dataclass(frozen=True)
class _Upload:
    """One blob a push needs present: a layer's or the config's."""

    digest: str
    size: int
    opener: Callable[[], BinaryIO]
    mount_from: str | None = None  # a repository on the destination's registry holding it


def _uploads(image: Image, registry: str) -> list[_Upload]:
    """The layers a registry may receive (never foreign ones: their bytes live at their
    ``urls``), then the config. A layer still in a repository of ``registry`` (a base image's,
    a registry cache hit's) is mounted from there; one in another registry is streamed."""
    config = image.config
    wanted = [
        _Upload(layer.digest, layer.size, blob_opener(layer), mount_source(layer, registry))
        for layer in image.layers
        if not mediatypes.is_foreign_layer(layer.media_type)
    ]
    wanted.append(_Upload(image.config_digest, len(config), lambda: io.BytesIO(config)))
    return wanted


def publish(image: Image, destination: Reference, pool: RegistryPool) -> Reference:
    """Push ``image`` to ``destination``; return the reference pinned to the pushed digest."""
    client = pool.client(destination.registry, push=True)
    repository = destination.repository
    wanted = _uploads(image, destination.registry)
    log.info("Pushing image to %s (%d blobs)", destination, len(wanted))
    try:
        with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as threads:
            # Every blob is known present before the manifest: the registry said so earlier
            # in this build (a HEAD, or its answer to the pre-upload), or `upload_blob` finds
            # it (HEAD) or uploads it now; an upload whose answer did not name the digest is
            # checked again with a HEAD.
            def ensure(blob: _Upload) -> bool:
                if client.confirmed(repository, blob.digest):
                    return True
                client.upload_blob(
                    repository, blob.digest, blob.size, blob.opener, mount_from=blob.mount_from
                )
                return client.confirmed(repository, blob.digest) or client.blob_exists(
                    repository, blob.digest
                )

            present = list(threads.map(in_this_build(ensure), wanted))
        missing = [blob.digest for blob, ok in zip(wanted, present, strict=True) if not ok]
        if missing:
            raise RegistryError(
                f"the registry does not have blobs {', '.join(missing)} after uploading them",
                reference=str(destination),
            )
    except RegistryError as exc:
        raise RegistryError(
            "push failed before the manifest was written (no tag was changed): "
            f"{exc.reference}: {exc.problem}",
            reference=str(destination),
            status=exc.status,
            code=exc.code,
            diagnostics=exc.diagnostics,
            hint=exc.hint,
            remedies=exc.remedies,
        ) from exc
    try:
        client.put_manifest(
            repository, destination.reference, image.manifest, image.manifest_media_type
        )
    except RegistryError as exc:
        if pool.options.push_ignore_immutable_tag_errors and _is_immutable_tag(exc):
            log.warning("%s: tag is immutable and already exists; push ignored", destination)
            return destination.with_digest(image.digest)
        raise
    log.info("Pushed %s@%s", destination.name, image.digest)
    return destination.with_digest(image.digest)


def _is_immutable_tag(exc: RegistryError) -> bool:
    if isinstance(exc, AuthError):
        return False
    return exc.code in _IMMUTABLE_CODES or "immutable" in str(exc).lower()


def check_push_permissions(destinations: Sequence[Reference], pool: RegistryPool) -> None:
    """Before building, make sure every destination accepts a push (as Kaniko does)."""
    for destination in destinations:
        try:
            pool.client(destination.registry, push=True).check_push(destination.repository)
        except AuthError as exc:
            raise AuthError(
                f"no permission to push: {exc.problem}",
                reference=str(destination),
                status=exc.status,
                code=exc.code,
                diagnostics=exc.diagnostics,
                hint=(_template(exc) + "; or " if exc.hint else "")
                + f"skip this check with {{{len(exc.remedies)}}}",
                remedies=(*exc.remedies, Remedy("skip_push_permission_check", True)),
            ) from exc


def _template(exc: RegistryError) -> str:
    """``exc``'s hint as a template to extend (braces of a plain hint escaped)."""
    hint = exc.hint or ""
    return hint if exc.remedies else hint.replace("{", "{{").replace("}", "}}")


def check_compression(image_format: str, compression: str, level: int | None) -> None:
    """zstd layers exist only in OCI media types; levels must fit the compressor."""
    if compression not in ("gzip", "zstd"):
        raise UsageError(f"unknown compression {compression!r}", hint="use gzip or zstd")
    if compression == "zstd" and image_format != "oci":
        raise UsageError(
            "zstd layers need OCI media types",
            hint="add {0}, or use {1}",
            remedies=(Remedy("image_format", "oci"), Remedy("compression", "gzip")),
        )
    top = 9 if compression == "gzip" else 19
    if level is not None and not 1 <= level <= top:
        raise UsageError(
            f"the compression level for {compression} must be 1..{top}, not {level}",
            hint="set {0} to 1.." + str(top),
            remedies=(Remedy("compression_level"),),
        )


def write_name_files(
    pinned: Sequence[Reference], with_digest: Path | None, tag_with_digest: Path | None
) -> None:
    """Kaniko's `--image-name-with-digest-file` / `--image-name-tag-with-digest-file`."""
    if with_digest is not None:
        lines = [f"{ref.name}@{ref.digest}" for ref in pinned]
        with_digest.write_text("".join(line + "\n" for line in lines))
    if tag_with_digest is not None:
        lines = [f"{ref.name}:{ref.tag or 'latest'}@{ref.digest}" for ref in pinned]
        tag_with_digest.write_text("".join(line + "\n" for line in lines))
