"""``pull_image``: resolve a reference to one image's manifest, config and layer list.

Why: a base image may be an index (multi-platform) or a single manifest, in Docker or OCI
form. The build only wants "the image for this platform", verified, with its layer
descriptors; downloading the layer blobs is left to the caller (``fetch_blob``) so it can
stream them into its own blob store.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kiln.errors import RegistryError, Remedy, UsageError
from kiln.image.config import ImageConfig
from kiln.image.errors import ImageFormatError
from kiln.image.platform import Platform, compatibility_rank
from kiln.registry import _mediatypes as mt
from kiln.registry.client import RegistryClient, manifest_media_type
from kiln.registry.reference import Reference

#: (os, architecture, variant or None)
PlatformSpec = tuple[str, str, str | None]
DEFAULT_PLATFORM: PlatformSpec = ("linux", "amd64", None)
_MAX_INDEX_DEPTH = 4


@dataclass(frozen=True)
class LayerRef:
    """One layer descriptor from the manifest (``urls`` for foreign layers)."""

    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()


@dataclass(frozen=True)
class PulledImage:
    """A resolved single-platform image: manifest as served, verified config, layer list.

    ``index_digest`` is the digest of the index the manifest was selected from, if any.
    """

    manifest_bytes: bytes
    manifest_media_type: str
    manifest_digest: str
    config_bytes: bytes
    config_digest: str
    layers: tuple[LayerRef, ...]
    config_media_type: str = ""
    index_digest: str | None = None


def _entry_platform(entry: dict[str, Any]) -> Platform | None:
    """The ``platform`` of an index entry, or None when it has none (attestations)."""
    plat = entry.get("platform")
    if not isinstance(plat, dict):
        return None
    try:
        return Platform.from_dict(plat)
    except ImageFormatError:
        return None


def _wanted(platform: PlatformSpec) -> Platform:
    return Platform(platform[0], platform[1], platform[2] or None)


def select_platform(index: dict[str, Any], platform: PlatformSpec) -> dict[str, Any] | None:
    """The index entry matching ``platform`` (os, arch, variant), or None.

    containerd's rule (shared with ``kiln.image.Index.select``): architecture aliases and
    default variants are normalised (``arm64`` is ``arm64/v8``), an exact match wins over an
    older compatible variant (``arm/v6`` for ``arm/v7``), and on a tie the earlier entry wins.
    """
    wanted = _wanted(platform)
    best: tuple[int, dict[str, Any]] | None = None
    for entry in index.get("manifests") or []:
        have = _entry_platform(entry) if isinstance(entry, dict) else None
        if have is None:
            continue
        rank = compatibility_rank(wanted, have)
        if rank is not None and (best is None or rank < best[0]):
            best = (rank, entry)
    return best[1] if best else None


def _describe_platforms(index: dict[str, Any]) -> str:
    found = []
    for entry in index.get("manifests") or []:
        have = _entry_platform(entry) if isinstance(entry, dict) else None
        if have is not None:
            found.append(str(have))
    return ", ".join(found) or "none"


def check_platform(have: Platform, platform: PlatformSpec, where: str) -> None:
    """Refuse a single-platform image whose config (``have``) is for another ``platform``.

    Why: without an index there is nothing to choose from, and using the image anyway gives
    a result that silently claims (or runs) the wrong architecture. The config's os,
    architecture and variant are matched with the index rule, so ``arm64`` satisfies
    ``linux/arm64/v8`` and an ``arm/v6`` image satisfies ``linux/arm/v7``. A config that
    names no os or architecture states no platform, so nothing contradicts the request.
    """
    if not have.os or not have.architecture:
        return
    wanted = _wanted(platform)
    if compatibility_rank(wanted, have) is None:
        raise RegistryError(
            f"no image for platform {wanted}: it is a single-platform image for {have}",
            reference=where,
            hint=f"build with {{0}}, or use a base image that provides {wanted}",
            remedies=[Remedy("platform", str(have))],
        )


def _load_json(data: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(data)
    except ValueError:
        raise RegistryError("the manifest is not valid JSON", reference=where) from None
    if not isinstance(document, dict):
        raise RegistryError("the manifest is not a JSON object", reference=where)
    return document


def _layers(manifest: dict[str, Any], where: str) -> tuple[LayerRef, ...]:
    try:
        return tuple(
            LayerRef(
                media_type=str(layer["mediaType"]),
                digest=str(layer["digest"]),
                size=int(layer["size"]),
                urls=tuple(layer.get("urls") or ()),
            )
            for layer in manifest.get("layers") or []
        )
    except (KeyError, TypeError, ValueError):
        raise RegistryError(
            "the manifest has a malformed layer descriptor", reference=where
        ) from None


def _split_args(
    client: RegistryClient,
    repo: str | Reference,
    ref: str | PlatformSpec | None,
    platform: PlatformSpec,
) -> tuple[str, str, PlatformSpec]:
    """Accept both ``(client, repo, ref, platform)`` and ``(client, Reference, platform)``."""
    if isinstance(repo, Reference):
        if repo.registry != client.registry:
            raise UsageError(
                f"{repo} is on {repo.registry}, but this client talks to {client.registry}"
            )
        if isinstance(ref, tuple):
            platform = ref
        return repo.repository, repo.reference, platform
    if not isinstance(ref, str):
        raise TypeError("pull_image(client, repo, ref) needs ref (a tag or digest)")
    return repo, ref, platform


#: Looks up a manifest by digest in a local cache; None when it is not there.
ManifestCache = Callable[[str], bytes | None]


@dataclass(frozen=True)
class ResolvedImage:
    """A single-platform manifest, resolved but with nothing else downloaded.

    ``manifests`` lists every (digest, bytes) document read on the way (index and manifest), so a
    caller can keep them in a cache.
    """

    manifest_bytes: bytes
    manifest_media_type: str
    manifest_digest: str
    config_digest: str
    config_media_type: str
    layers: tuple[LayerRef, ...]
    index_digest: str | None = None
    manifests: tuple[tuple[str, bytes], ...] = ()


def _get_manifest(
    client: RegistryClient, repository: str, reference: str, cache: ManifestCache | None
) -> tuple[bytes, str, str]:
    """A manifest by tag or digest; a digest found in ``cache`` needs no request."""
    if cache is not None and reference.startswith("sha256:"):
        data = cache(reference)
        if data is not None and "sha256:" + hashlib.sha256(data).hexdigest() == reference:
            return data, manifest_media_type(data, ""), reference
    return client.get_manifest(repository, reference, mt.PULL_ACCEPT)


def resolve_image(
    client: RegistryClient,
    repository: str,
    reference: str,
    platform: PlatformSpec = DEFAULT_PLATFORM,
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
        if media_type in mt.SCHEMA1:
            raise RegistryError(
                "schema 1 manifests are not supported; re-push the image with a current client",
                reference=where,
            )
        document = _load_json(data, where)
        if media_type not in mt.INDEXES:
            break
        entry = select_platform(document, platform)
        if entry is None:
            wanted = "/".join(part for part in platform if part)
            raise RegistryError(
                f"no image for platform {wanted} in the index (has: "
                f"{_describe_platforms(document)})",
                reference=where,
                hint="choose one of the listed platforms with {0}",
                remedies=[Remedy("platform")],
            )
        index_digest = index_digest or digest
        reference = str(entry["digest"])
    else:
        raise RegistryError("indexes nested too deeply", reference=where)
    if media_type not in mt.IMAGE_MANIFESTS:
        raise RegistryError(f"unsupported manifest media type {media_type!r}", reference=where)
    config = document.get("config") or {}
    return ResolvedImage(
        manifest_bytes=data,
        manifest_media_type=media_type,
        manifest_digest=digest,
        config_digest=str(config.get("digest", "")),
        config_media_type=str(config.get("mediaType", "")),
        layers=_layers(document, where),
        index_digest=index_digest,
        manifests=tuple(seen),
    )


def pull_image(
    client: RegistryClient,
    repo: str | Reference,
    ref: str | PlatformSpec | None = None,
    platform: PlatformSpec = DEFAULT_PLATFORM,
) -> PulledImage:
    """Resolve ``repo:ref`` (or a ``Reference``) to the image for ``platform``.

    Like ``resolve_image``, and the config blob is fetched and verified (a single-platform
    image must be for ``platform``: ``check_platform``); layers are only described.
    """
    repository, reference, platform = _split_args(client, repo, ref, platform)
    resolved = resolve_image(client, repository, reference, platform)
    buffer = io.BytesIO()
    client.fetch_blob(repository, resolved.config_digest, buffer)
    if resolved.index_digest is None:
        where = client.describe(repository, reference)
        check_platform(ImageConfig.from_json(buffer.getvalue()).platform, platform, where)
    return PulledImage(
        manifest_bytes=resolved.manifest_bytes,
        manifest_media_type=resolved.manifest_media_type,
        manifest_digest=resolved.manifest_digest,
        config_bytes=buffer.getvalue(),
        config_digest=resolved.config_digest,
        layers=resolved.layers,
        config_media_type=resolved.config_media_type,
        index_digest=resolved.index_digest,
    )
