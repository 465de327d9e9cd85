"""Pushing a finished image: blobs in parallel, verified, then the manifest; plus push checks.

Why its own module: a push must be atomic from the registry's point of view. Every blob is
uploaded (or found present) and known present *before* the manifest goes up, so a failed push
never leaves a tag pointing at missing blobs. Known present means the registry said so: a HEAD
answered 200, or it acknowledged the upload under the blob's digest (else a HEAD checks). A blob
already there (shared with another image) costs one HEAD; one the pre-upload sent while the
build ran (see `preupload`) costs nothing more, its upload's answer having confirmed it. The same
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
from kiln.errors import AuthError, RegistryError, Remedy, UsageError
from kiln.image import digest_of, mediatypes
from kiln.registry import Reference

log = logging.getLogger("kiln")

#: Layers a registry must not receive: their bytes live elsewhere (the descriptor's ``urls``).
NON_DISTRIBUTABLE = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
_IMMUTABLE_CODES = frozenset({"TAG_INVALID"})


@dataclass(frozen=True)
class Blob:
    """One blob to push: digest, size, media type and a function opening its bytes."""

    digest: str
    size: int
    media_type: str
    opener: Callable[[], BinaryIO]


@dataclass(frozen=True)
class Publication:
    """What goes to a registry: blobs (layers and config) and the manifest bytes."""

    blobs: tuple[Blob, ...]
    manifest: bytes
    manifest_media_type: str
    digest: str


def config_blob(data: bytes, media_type: str = mediatypes.DOCKER_CONFIG) -> Blob:
    """The config as a blob to push."""
    return Blob(digest_of(data), len(data), media_type, lambda: io.BytesIO(data))


def publish(item: Publication, destination: str, pool: RegistryPool) -> Reference:
    """Push ``item`` to ``destination``; return the reference pinned to the pushed digest."""
    ref = Reference.parse(destination)
    client = pool.client(ref.registry, push=True)
    wanted = [blob for blob in item.blobs if blob.media_type not in NON_DISTRIBUTABLE]
    log.info("Pushing image to %s (%d blobs)", ref, len(wanted))
    try:
        with ThreadPoolExecutor(max_workers=TRANSFER_THREADS) as threads:
            # Every blob is known present before the manifest: the registry said so earlier
            # in this build (a HEAD, or its answer to the pre-upload), or `upload_blob` finds
            # it (HEAD) or uploads it now; an upload whose answer did not name the digest is
            # checked again with a HEAD.
            def ensure(blob: Blob) -> bool:
                repo = ref.repository
                if client.confirmed(repo, blob.digest):
                    return True
                client.upload_blob(repo, blob.digest, blob.size, blob.opener)
                return client.confirmed(repo, blob.digest) or client.blob_exists(repo, blob.digest)

            present = list(threads.map(in_this_build(ensure), wanted))
        missing = [blob.digest for blob, ok in zip(wanted, present, strict=True) if not ok]
        if missing:
            raise RegistryError(
                f"the registry does not have blobs {', '.join(missing)} after uploading them",
                reference=str(ref),
            )
    except RegistryError as exc:
        raise RegistryError(
            "push failed before the manifest was written (no tag was changed): "
            f"{exc.reference}: {exc.problem}",
            reference=str(ref),
            status=exc.status,
            code=exc.code,
            diagnostics=exc.diagnostics,
            hint=exc.hint,
            remedies=exc.remedies,
        ) from exc
    try:
        client.put_manifest(ref.repository, ref.reference, item.manifest, item.manifest_media_type)
    except RegistryError as exc:
        if pool.options.push_ignore_immutable_tag_errors and _is_immutable_tag(exc):
            log.warning("%s: tag is immutable and already exists; push ignored", ref)
            return ref.with_digest(item.digest)
        raise
    log.info("Pushed %s@%s", ref.name, item.digest)
    return ref.with_digest(item.digest)


def _is_immutable_tag(exc: RegistryError) -> bool:
    if isinstance(exc, AuthError):
        return False
    return exc.code in _IMMUTABLE_CODES or "immutable" in str(exc).lower()


def check_push_permissions(destinations: Sequence[str], pool: RegistryPool) -> None:
    """Before building, make sure every destination accepts a push (as Kaniko does)."""
    for destination in destinations:
        ref = Reference.parse(destination)
        try:
            pool.client(ref.registry, push=True).check_push(ref.repository)
        except AuthError as exc:
            raise AuthError(
                f"no permission to push: {exc.problem}",
                reference=str(ref),
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
