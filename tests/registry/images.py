"""Tiny synthetic images for registry tests: real JSON, real digests, built per test."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from dataclasses import dataclass

from kiln.registry import RegistryClient

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(name: str, content: bytes) -> bytes:
    """An uncompressed layer tar holding one file."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


@dataclass(frozen=True)
class TestImage:
    config: bytes
    layers: tuple[bytes, ...]
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


def make_image(marker: str, architecture: str = "amd64", variant: str | None = None) -> TestImage:
    layer = layer_tar(f"{marker}.txt", marker.encode() * 100)
    config_doc = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Env": [f"MARKER={marker}"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer)]},
    }
    if variant:
        config_doc["variant"] = variant
    config = json.dumps(config_doc).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        },
        indent=1,  # not canonical on purpose: bytes must round-trip exactly
    ).encode()
    return TestImage(config, (layer,), manifest)


def push_image(client: RegistryClient, repo: str, tag: str, image: TestImage) -> str:
    for blob in (*image.layers, image.config):
        client.upload_blob(repo, sha256(blob), len(blob), lambda blob=blob: io.BytesIO(blob))
    return client.put_manifest(repo, tag, image.manifest, OCI_MANIFEST)


def index_of(entries: list[tuple[TestImage, dict[str, str]]]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": image.digest,
                    "size": len(image.manifest),
                    "platform": platform,
                }
                for image, platform in entries
            ],
        }
    ).encode()
