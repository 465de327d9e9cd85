"""Writing an image as a ``docker save`` tarball (``docker load``, ``podman load``, skopeo).

Why: the classic archive is what a machine without a registry can load. The layout follows
``docker save`` before Docker 25: ``manifest.json``, ``<config-hex>.json``, one
``<diff-id-hex>/layer.tar`` per layer (uncompressed, as every loader accepts) and a legacy
``repositories`` file. Layers are stream-decompressed twice -- once to learn the size the tar
header needs and verify both digests, once to write -- so memory stays bounded and no temporary
copy of a layer is made. The archive appears atomically at ``path``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln.image.atomic import atomic_writer
from kiln.image.blobs import BlobReader
from kiln.image.config import ImageConfig
from kiln.image.digest import digest_hex, digest_of
from kiln.image.errors import ImageFormatError
from kiln.image.uncompressed import measure_layer, open_uncompressed


def write_docker_archive(
    path: Path,
    *,
    config: bytes,
    layers: Sequence[tuple[str, str]],
    blobs: BlobReader,
    repo_tags: Sequence[str] = (),
) -> None:
    """Write a ``docker save``-format tar of one image to ``path``.

    ``layers`` lists ``(blob_digest, diff_id)`` pairs, base first; the diff IDs must equal the
    config's ``rootfs.diff_ids``. ``repo_tags`` are written as given (``name:tag``).
    """
    diff_ids = [diff_id for _, diff_id in layers]
    if list(ImageConfig.from_json(config).diff_ids) != diff_ids:
        raise ImageFormatError("layer diff IDs do not match the config's rootfs.diff_ids")
    config_name = f"{digest_hex(digest_of(config))}.json"
    layer_names = [f"{digest_hex(diff_id)}/layer.tar" for diff_id in diff_ids]
    with (
        atomic_writer(path) as handle,
        tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        written: set[str] = set()
        for (digest, diff_id), name in zip(layers, layer_names, strict=True):
            if name not in written:
                _add_layer(archive, name, digest, diff_id, blobs)
                written.add(name)
        _add_bytes(archive, config_name, config)
        manifest = [{"Config": config_name, "RepoTags": list(repo_tags), "Layers": layer_names}]
        _add_bytes(archive, "manifest.json", _dump(manifest))
        repositories = _repositories(repo_tags, diff_ids)
        if repositories:
            _add_bytes(archive, "repositories", _dump(repositories))


def _add_layer(
    archive: tarfile.TarFile, name: str, digest: str, diff_id: str, blobs: BlobReader
) -> None:
    with blobs.open(digest) as source:
        size = measure_layer(source, digest, diff_id)
    archive.addfile(_info(name.split("/")[0], tarfile.DIRTYPE, 0))
    archive.addfile(
        _info(name.rsplit("/", 1)[0] + "/VERSION", tarfile.REGTYPE, 3), io.BytesIO(b"1.0")
    )
    with blobs.open(digest) as source:
        archive.addfile(_info(name, tarfile.REGTYPE, size), open_uncompressed(source, digest))


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
