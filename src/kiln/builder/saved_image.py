"""Reading a saved build (OCI layout directory or docker-archive tarball) for `kiln push`.

Why: `kiln build --no-push --oci-layout-path/--tar-path` saves an image; CI often pushes it in a
later step. An OCI layout is pushed with its exact manifest bytes (so the digest stays the one
the build printed). A `kiln build --tar-path` archive is an OCI layout too (``index.json`` and
the manifest blob next to ``manifest.json``, as Docker 25's `docker save` writes it), so it is
pushed the same way, digest unchanged. Only an archive without ``index.json`` (an older
`docker save`) has no manifest to keep: its layers are gzip-compressed (deterministically) and a
Docker v2s2 manifest is made for them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import tarfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from kiln.builder.publish import Blob, Publication, config_blob
from kiln.errors import UsageError
from kiln.image import Descriptor, build_manifest, digest_of, mediatypes

_INDEXES = (mediatypes.OCI_INDEX, mediatypes.DOCKER_MANIFEST_LIST)


def load_saved(source: Path, scratch: Path, tag: str | None = None) -> Publication:
    """The image saved at ``source`` (a layout directory or a tarball), ready to publish."""
    if (source / "index.json").is_file():
        return _from_layout(source, tag)
    if source.is_file():
        layout = _layout_in_archive(source, scratch / "layout")
        if layout is not None:
            return _from_layout(layout, tag)
        return _from_archive(source, scratch)
    raise UsageError(
        f"{source} is neither an OCI image layout (no index.json) nor a docker-archive tarball"
    )


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _from_layout(layout: Path, tag: str | None) -> Publication:
    entries = _json(layout / "index.json").get("manifests") or []
    if tag is not None:
        entries = [
            e
            for e in entries
            if (e.get("annotations") or {}).get("org.opencontainers.image.ref.name") == tag
        ]
    if len(entries) != 1:
        raise UsageError(
            f"{layout}: expected exactly one image{f' tagged {tag}' if tag else ''}, "
            f"found {len(entries)}",
            hint="choose one with SOURCE:TAG",
        )
    entry = entries[0]
    if entry.get("mediaType") in _INDEXES:
        raise UsageError(f"{layout}: pushing a multi-platform index is not supported yet")

    def blob_path(digest: str) -> Path:
        algorithm, _, hexdigest = digest.partition(":")
        return layout / "blobs" / algorithm / hexdigest

    manifest_bytes = blob_path(entry["digest"]).read_bytes()
    manifest = json.loads(manifest_bytes)
    descriptors = [manifest["config"], *manifest.get("layers", [])]
    blobs = tuple(
        Blob(d["digest"], int(d["size"]), d["mediaType"], _opener(blob_path(d["digest"])))
        for d in descriptors
    )
    media_type = manifest.get("mediaType") or entry.get("mediaType") or mediatypes.OCI_MANIFEST
    return Publication(blobs, manifest_bytes, media_type, digest_of(manifest_bytes))


def _layout_in_archive(path: Path, target: Path) -> Path | None:
    """Extract the OCI layout a tarball holds (``index.json``, ``oci-layout``, ``blobs/``) into
    ``target``; None if it holds none. Nothing else is extracted, and no member is trusted to
    name its own path: only ``blobs/sha256/<64 hex>`` and the two files are written."""
    try:
        with tarfile.open(path) as archive:
            names = set(archive.getnames())
            if "index.json" not in names:
                return None
            (target / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            for member in archive.getmembers():
                if not member.isfile() or not _is_layout_member(member.name):
                    continue
                source = archive.extractfile(member)
                if source is None:
                    continue
                with source, (target / member.name).open("wb") as out:
                    shutil.copyfileobj(source, out, 1024 * 1024)
    except (OSError, tarfile.TarError) as exc:
        raise UsageError(f"{path} is not a readable image archive: {exc}") from None
    return target


def _is_layout_member(name: str) -> bool:
    if name in ("index.json", "oci-layout"):
        return True
    prefix = "blobs/sha256/"
    hexdigest = name[len(prefix) :]
    return (
        name.startswith(prefix)
        and len(hexdigest) == 64
        and all(c in "0123456789abcdef" for c in hexdigest)
    )


def _from_archive(path: Path, scratch: Path) -> Publication:
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(path) as archive:
            entry = json.loads(_member(archive, "manifest.json"))[0]
            config = _member(archive, entry["Config"])
            layers = [_compress(archive, name, scratch) for name in entry["Layers"]]
    except (OSError, tarfile.TarError, ValueError, KeyError, IndexError) as exc:
        raise UsageError(f"{path} is not a readable docker-archive: {exc}") from None
    config_descriptor = Descriptor(mediatypes.DOCKER_CONFIG, digest_of(config), len(config))
    manifest = build_manifest(
        config_descriptor,
        [Descriptor(mediatypes.DOCKER_LAYER_GZIP, blob.digest, blob.size) for blob in layers],
        "docker",
    )
    return Publication(
        (*layers, config_blob(config)), manifest, mediatypes.DOCKER_MANIFEST, digest_of(manifest)
    )


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    stream = archive.extractfile(name)
    if stream is None:
        raise KeyError(name)
    with stream:
        return stream.read()


def _compress(archive: tarfile.TarFile, name: str, scratch: Path) -> Blob:
    """gzip one layer to a scratch file (mtime 0: the same tar always gives the same blob)."""
    target = scratch / f"layer-{len(list(scratch.iterdir()))}.tar.gz"
    source = archive.extractfile(name)
    if source is None:
        raise KeyError(name)
    with (
        source,
        target.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed,
    ):
        shutil.copyfileobj(source, compressed, 1024 * 1024)
    hasher = hashlib.sha256()
    with target.open("rb") as done:
        for chunk in iter(partial(done.read, 1024 * 1024), b""):
            hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    return Blob(digest, target.stat().st_size, mediatypes.DOCKER_LAYER_GZIP, _opener(target))


def _opener(path: Path) -> Callable[[], BinaryIO]:
    def open_blob() -> BinaryIO:
        return path.open("rb")

    return open_blob
