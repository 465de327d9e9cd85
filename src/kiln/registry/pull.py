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

from kiln.errors import RegistryError, UsageError
from kiln.registry import _mediatypes as mt
from kiln.registry.client import RegistryClient, manifest_media_type
from kiln.registry.reference import Reference

#: (os, architecture, variant or None)
PlatformSpec = tuple[str, str, str | None]
DEFAULT_PLATFORM: PlatformSpec = ("linux", "amd64", None)
_MAX_INDEX_DEPTH = 4
_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm"}
_DEFAULT_VARIANTS = {"arm64": "v8"}


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


def _normalize_arch(architecture: str) -> str:
    return _ARCH_ALIASES.get(architecture, architecture)


def _variant_matches(want: str | None, have: str | None, architecture: str) -> bool:
    if want is None:
        return True
    default = _DEFAULT_VARIANTS.get(architecture)
    return (have or default) == want or (have is None and want == default)


def select_platform(index: dict[str, Any], platform: PlatformSpec) -> dict[str, Any] | None:
    """The index entry matching ``platform`` (os, arch, variant), or None.

    With no variant requested, an entry without a variant is preferred over one with.
    """
    want_os, want_arch, want_variant = platform
    want_arch = _normalize_arch(want_arch)
    matches = []
    for entry in index.get("manifests") or []:
        plat = entry.get("platform") or {}
        arch = _normalize_arch(str(plat.get("architecture", "")))
        if plat.get("os") != want_os or arch != want_arch:
            continue
        if _variant_matches(want_variant, plat.get("variant"), arch):
            matches.append(entry)
    matches.sort(key=lambda entry: bool((entry.get("platform") or {}).get("variant")))
    return matches[0] if matches else None


def _describe_platforms(index: dict[str, Any]) -> str:
    found = []
    for entry in index.get("manifests") or []:
        plat = entry.get("platform") or {}
        text = f"{plat.get('os')}/{plat.get('architecture')}"
        found.append(text + (f"/{plat['variant']}" if plat.get("variant") else ""))
    return ", ".join(found) or "none"


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
                hint="choose one of the listed platforms with --platform",
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

    Like ``resolve_image``, and the config blob is fetched and verified; layers are only
    described.
    """
    repository, reference, platform = _split_args(client, repo, ref, platform)
    resolved = resolve_image(client, repository, reference, platform)
    buffer = io.BytesIO()
    client.fetch_blob(repository, resolved.config_digest, buffer)
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
