"""Writing an image as a ``docker save`` tarball (``docker load``, ``podman load``, skopeo).

Why: the classic archive is what a machine without a registry can load, and CI pushes it in a
later step (``kiln push``). The layout follows ``docker save`` of Docker 25: every file is a blob
under ``blobs/sha256/``, named by its digest; ``manifest.json`` (and the legacy ``repositories``)
list the config and layer blobs for loaders that read the classic format, and ``oci-layout`` +
``index.json`` + the image manifest make the same tar an OCI image layout. Layers are stored as
the very blobs the image manifest names (compressed: every loader decompresses them), so the
archive holds the image whose digest the build printed, and pushing it gives that digest back.
Each layer is streamed once to verify its digest and diff ID (zstd is refused: ``docker load``
cannot read it) and once into the archive; no copy is made, memory stays bounded, and the
archive appears atomically at ``path``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln.errors import ImageFormatError
from kiln.image.atomic import atomic_writer
from kiln.image.config import ImageConfig
from kiln.image.digest import digest_hex
from kiln.image.image import Image
from kiln.image.layer import Layer
from kiln.image.mediatypes import OCI_INDEX
from kiln.image.oci_layout import LAYOUT_VERSION
from kiln.image.uncompressed import measure_layer


def write_docker_archive(path: Path, image: Image, repo_tags: Sequence[str] = ()) -> None:
    """Write a ``docker save``-format tar of ``image`` to ``path``.

    The layers' diff IDs must equal the config's ``rootfs.diff_ids``. ``repo_tags`` are written
    as given (``name:tag``). The image manifest (naming exactly these blobs) also makes the tar
    an OCI image layout holding that manifest, tagged with the first repo tag's tag.
    """
    diff_ids = [layer.diff_id for layer in image.layers]
    if list(ImageConfig.from_json(image.config).diff_ids) != diff_ids:
        raise ImageFormatError("layer diff IDs do not match the config's rootfs.diff_ids")
    config_name = _blob_name(image.config_digest)
    layer_names = [_blob_name(layer.digest) for layer in image.layers]
    with (
        atomic_writer(path) as handle,
        tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        archive.addfile(_info("blobs", tarfile.DIRTYPE, 0))
        archive.addfile(_info("blobs/sha256", tarfile.DIRTYPE, 0))
        written: set[str] = set()
        for layer, name in zip(image.layers, layer_names, strict=True):
            if name not in written:
                _add_layer(archive, name, layer)
                written.add(name)
        _add_bytes(archive, config_name, image.config)
        entry = [{"Config": config_name, "RepoTags": list(repo_tags), "Layers": layer_names}]
        _add_bytes(archive, "manifest.json", _dump(entry))
        repositories = _repositories(repo_tags, diff_ids)
        if repositories:
            _add_bytes(archive, "repositories", _dump(repositories))
        _add_layout(archive, image, repo_tags)


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{digest_hex(digest)}"


def _add_layer(archive: tarfile.TarFile, name: str, layer: Layer) -> None:
    with layer.open_compressed() as source:
        measure_layer(source, layer.digest, layer.diff_id)  # both digests checked, zstd refused
    with layer.open_compressed() as source:
        archive.addfile(_info(name, tarfile.REGTYPE, layer.size), source)


def _add_layout(archive: tarfile.TarFile, image: Image, repo_tags: Sequence[str]) -> None:
    """``oci-layout``, the manifest blob and ``index.json``: the tar is an OCI layout too."""
    _add_bytes(archive, _blob_name(image.digest), image.manifest)
    descriptor: dict[str, Any] = {
        "mediaType": image.manifest_media_type,
        "digest": image.digest,
        "size": len(image.manifest),
    }
    if repo_tags:
        tag = repo_tags[0].rpartition(":")[2]
        descriptor["annotations"] = {
            "io.containerd.image.name": repo_tags[0],
            "org.opencontainers.image.ref.name": tag,
        }
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor]}
    _add_bytes(archive, "oci-layout", LAYOUT_VERSION)
    _add_bytes(archive, "index.json", _dump(index))


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    archive.addfile(_info(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))


def _info(name: str, kind: bytes, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = size
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.mtime = 0
    return info


def _repositories(repo_tags: Sequence[str], diff_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """The legacy ``{"repo": {"tag": "<top layer id>"}}`` map; digests cannot be expressed."""
    if not diff_ids:
        return {}
    top = digest_hex(diff_ids[-1])
    out: dict[str, dict[str, str]] = {}
    for ref in repo_tags:
        repo, sep, tag = ref.rpartition(":")
        if not sep or "/" in tag or "@" in ref:
            continue
        out.setdefault(repo, {})[tag] = top
    return out


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode("utf-8")
