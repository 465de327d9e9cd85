"""``resolve_image`` / ``pull_image``: a reference to one image's manifest (and config).

Why: a base image may be an index (multi-platform) or a single manifest, in Docker or OCI
form. The build only wants "the image for this platform", verified, with its layer
descriptors; downloading the layer blobs is left to the caller (``fetch_blob``) so it can
stream them into its own blob store. Documents are parsed once, into ``kiln.image`` values
(``Manifest``, ``Index``, ``Platform``), and index entries are chosen by ``Index.select``:
the registry has no image model of its own.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from kiln.errors import ImageFormatError, RegistryError, Remedy, UsageError
from kiln.image import Descriptor, ImageConfig, Index, Manifest, Platform, digest_of, parse_manifest
from kiln.image.platform import DEFAULT_PLATFORM, compatibility_rank
from kiln.registry import _mediatypes as mt
from kiln.registry.client import RegistryClient, manifest_media_type
from kiln.registry.reference import Reference

_MAX_INDEX_DEPTH = 4

#: Looks up a manifest by digest in a local cache; None when it is not there.
ManifestCache = Callable[[str], bytes | None]


@dataclass(frozen=True)
class ResolvedImage:
    """A single-platform manifest, resolved but with nothing else downloaded.

    ``manifest_bytes`` are the document as served (its digest is ``manifest_digest``);
    ``index_digest`` is the digest of the index it was selected from, if any; ``manifests``
    lists every (digest, bytes) document read on the way (index and manifest), so a caller can
    keep them in a cache.
    """

    manifest_bytes: bytes
    manifest: Manifest
    manifest_digest: str
    index_digest: str | None = None
    manifests: tuple[tuple[str, bytes], ...] = ()

    @property
    def manifest_media_type(self) -> str:
        """The manifest's media type (Docker v2s2 or OCI)."""
        return self.manifest.media_type

    @property
    def config_digest(self) -> str:
        """The digest of the config blob."""
        return self.manifest.config.digest

    @property
    def layers(self) -> tuple[Descriptor, ...]:
        """The layer descriptors, base first (``urls`` kept for foreign layers)."""
        return self.manifest.layers


@dataclass(frozen=True)
class PulledImage(ResolvedImage):
    """A resolved image with its config fetched and verified."""

    config_bytes: bytes = field(kw_only=True)


def check_platform(have: Platform, wanted: Platform, where: str) -> None:
    """Refuse a single-platform image whose config (``have``) is for another platform.

    Why: without an index there is nothing to choose from, and using the image anyway gives
    a result that silently claims (or runs) the wrong architecture. The config's os,
    architecture and variant are matched with the index rule, so ``arm64`` satisfies
    ``linux/arm64/v8`` and an ``arm/v6`` image satisfies ``linux/arm/v7``. A config that
    names no os or architecture states no platform, so nothing contradicts the request.
    """
    if not have.os or not have.architecture:
        return
    if compatibility_rank(wanted, have) is None:
        raise RegistryError(
            f"no image for platform {wanted}: it is a single-platform image for {have}",
            reference=where,
            hint=f"build with {{0}}, or use a base image that provides {wanted}",
            remedies=[Remedy("platform", str(have))],
        )


def _get_manifest(
    client: RegistryClient, repository: str, reference: str, cache: ManifestCache | None
) -> tuple[bytes, str, str]:
    """A manifest by tag or digest; a digest found in ``cache`` needs no request."""
    if cache is not None and reference.startswith("sha256:"):
        data = cache(reference)
        if data is not None and digest_of(data) == reference:
            return data, manifest_media_type(data, ""), reference
    return client.get_manifest(repository, reference, mt.PULL_ACCEPT)


def _parse(data: bytes, media_type: str, where: str) -> Manifest | Index:
    try:
        return parse_manifest(data, media_type)
    except ImageFormatError as exc:
        raise RegistryError(exc.message, reference=where, hint=exc.hint) from None


def resolve_image(
    client: RegistryClient,
    repository: str,
    reference: str,
    platform: Platform = DEFAULT_PLATFORM,
    cache: ManifestCache | None = None,
) -> ResolvedImage:
    """Resolve ``repository:reference`` to the manifest for ``platform`` (index or not).

    Accepts Docker v2 schema 2 and OCI manifests and indexes; rejects schema 1.
    """
    where = client.describe(repository, reference)
    index_digest = None
    seen: list[tuple[str, bytes]] = []
    for _ in range(_MAX_INDEX_DEPTH):
        data, media_type, digest = _get_manifest(client, repository, reference, cache)
        seen.append((digest, data))
        document = _parse(data, media_type, where)
        if isinstance(document, Manifest):
            return ResolvedImage(data, document, digest, index_digest, tuple(seen))
        entry = document.select(platform)
        if entry is None:
            offered = ", ".join(str(p) for p in document.platforms()) or "none"
            raise RegistryError(
                f"no image for platform {platform} in the index (has: {offered})",
                reference=where,
                hint="choose one of the listed platforms with {0}",
                remedies=[Remedy("platform")],
            )
        index_digest = index_digest or digest
        reference = entry.digest
    raise RegistryError("indexes nested too deeply", reference=where)


def pull_image(
    client: RegistryClient,
    repo: str | Reference,
    ref: str | Platform | None = None,
    platform: Platform = DEFAULT_PLATFORM,
) -> PulledImage:
    """Resolve ``repo:ref`` (or a ``Reference``, then ``ref`` may be the platform) to the
    image for ``platform``.

    Like ``resolve_image``, and the config blob is fetched and verified (a single-platform
    image must be for ``platform``: ``check_platform``); layers are only described.
    """
    if isinstance(repo, Reference):
        if repo.registry != client.registry:
            raise UsageError(
                f"{repo} is on {repo.registry}, but this client talks to {client.registry}"
            )
        platform = ref if isinstance(ref, Platform) else platform
        repository, reference = repo.repository, repo.reference
    elif isinstance(ref, str):
        repository, reference = repo, ref
    else:
        raise TypeError("pull_image(client, repo, ref) needs ref (a tag or digest)")
    resolved = resolve_image(client, repository, reference, platform)
    buffer = io.BytesIO()
    client.fetch_blob(repository, resolved.config_digest, buffer)
    if resolved.index_digest is None:
        where = client.describe(repository, reference)
        check_platform(ImageConfig.from_json(buffer.getvalue()).platform, platform, where)
    return PulledImage(
        resolved.manifest_bytes,
        resolved.manifest,
        resolved.manifest_digest,
        resolved.index_digest,
        resolved.manifests,
        config_bytes=buffer.getvalue(),
    )
