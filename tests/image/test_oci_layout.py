"""write_oci_layout, checked by skopeo and umoci (the real consumers of layouts)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kiln.errors import DigestMismatchError, ImageFormatError
from kiln.image import Image, digest_of, mediatypes, write_oci_layout
from tests.image.layers import DictBlobs, SampleImage, make_image, make_layer

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
needs_umoci = pytest.mark.skipif(shutil.which("umoci") is None, reason="needs umoci")

BASE_LAYER = make_layer({"etc/os-release": b"ID=kiln\n", "bin/hello": b"#!/bin/sh\necho hi\n"})
APP_LAYER = make_layer({"app/main.txt": b"version 1\n"})
APP2_LAYER = make_layer({"app/main.txt": b"version 2\n"})


def _blobs(*images: SampleImage) -> DictBlobs:
    blobs = DictBlobs()
    for image in images:
        for layer in image.layers:
            blobs.add(layer)
    return blobs


def _skopeo_inspect(ref: str) -> dict[str, Any]:
    out = subprocess.run(
        ["skopeo", "inspect", ref], check=True, capture_output=True, timeout=60
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def _index(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((path / "index.json").read_text())
    return result


@needs_skopeo
def test_skopeo_reads_the_layout(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER))
    layout = tmp_path / "layout"
    entry = write_oci_layout(layout, image.image(_blobs(image)), tag="v1")
    assert entry.digest == digest_of(image.manifest)
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    info = _skopeo_inspect(f"oci:{layout}:v1")
    assert info["Digest"] == digest_of(image.manifest)
    assert info["Layers"] == [BASE_LAYER.digest, APP_LAYER.digest]
    assert info["Architecture"] == "amd64"
    raw = subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", f"oci:{layout}:v1"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert raw == image.config


@needs_umoci
def test_umoci_unpacks_the_layers(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER))
    layout = tmp_path / "layout"
    write_oci_layout(layout, image.image(_blobs(image)), ["latest"])
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    rootfs = bundle / "rootfs"
    assert (rootfs / "etc/os-release").read_bytes() == b"ID=kiln\n"
    assert (rootfs / "app/main.txt").read_bytes() == b"version 1\n"
    runtime = json.loads((bundle / "config.json").read_text())
    assert runtime["process"]["args"] == ["/bin/true"]


@needs_skopeo
def test_extending_a_layout_shares_blobs_and_retags(tmp_path: Path) -> None:
    first = make_image((BASE_LAYER, APP_LAYER))
    second = make_image((BASE_LAYER, APP2_LAYER))
    layout = tmp_path / "layout"
    write_oci_layout(layout, first.image(_blobs(first)), tag="v1")

    blobs = _blobs(second)
    write_oci_layout(layout, second.image(blobs), tags=["v2", "latest"])
    assert blobs.opened == [APP2_LAYER.digest]  # the base layer was already there

    names = {
        m["annotations"]["org.opencontainers.image.ref.name"] for m in _index(layout)["manifests"]
    }
    assert names == {"v1", "v2", "latest"}
    assert _skopeo_inspect(f"oci:{layout}:v1")["Digest"] == digest_of(first.manifest)
    assert _skopeo_inspect(f"oci:{layout}:latest")["Digest"] == digest_of(second.manifest)

    # Re-pointing a tag replaces its entry rather than adding a second "v1".
    write_oci_layout(layout, second.image(_blobs(second)), tag="v1")
    entries = _index(layout)["manifests"]
    v1 = [m for m in entries if m["annotations"]["org.opencontainers.image.ref.name"] == "v1"]
    assert len(v1) == 1
    assert v1[0]["digest"] == digest_of(second.manifest)
    assert _skopeo_inspect(f"oci:{layout}:v1")["Digest"] == digest_of(second.manifest)


def test_untagged_image_is_listed_once(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER,))
    for _ in range(2):
        write_oci_layout(tmp_path, image.image(_blobs(image)))
    entries = _index(tmp_path)["manifests"]
    assert len(entries) == 1
    assert "annotations" not in entries[0]
    assert entries[0]["platform"] == {"architecture": "amd64", "os": "linux"}
    blob_names = sorted(p.name for p in (tmp_path / "blobs/sha256").iterdir())
    expected = [digest_of(image.manifest), digest_of(image.config), BASE_LAYER.digest]
    assert blob_names == sorted(d.split(":")[1] for d in expected)


@needs_skopeo
@needs_umoci
def test_docker_manifests_are_kept_as_they_are(tmp_path: Path) -> None:
    """A Docker manifest is written byte for byte (its digest is the image's); no conversion.

    skopeo 1.9 and umoci 0.4 read only OCI manifests from a layout; this records that, so the
    README's advice (build with OCI media types for them) is checked against the real tools.
    """
    image = make_image((BASE_LAYER, APP_LAYER), fmt="docker")
    entry = write_oci_layout(tmp_path, image.image(_blobs(image)), tag="d")
    assert entry.media_type == mediatypes.DOCKER_MANIFEST
    assert entry.digest == digest_of(image.manifest)
    written = (tmp_path / "blobs/sha256" / entry.digest.split(":")[1]).read_bytes()
    assert written == image.manifest
    assert _index(tmp_path)["manifests"][0]["mediaType"] == mediatypes.DOCKER_MANIFEST
    skopeo = subprocess.run(["skopeo", "inspect", f"oci:{tmp_path}:d"], capture_output=True)
    umoci = subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{tmp_path}:d", str(tmp_path / "b")],
        capture_output=True,
        text=True,
    )
    assert skopeo.returncode != 0
    assert umoci.returncode != 0 and "MediaTypeImageManifest" in umoci.stderr


def test_corrupt_blob_is_refused_and_not_published(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER,))
    blobs = _blobs(image)
    blobs.blobs[BASE_LAYER.digest] = BASE_LAYER.blob + b"junk"
    with pytest.raises(DigestMismatchError):
        write_oci_layout(tmp_path, image.image(blobs), tag="x")
    assert list((tmp_path / "blobs/sha256").iterdir()) == []
    assert not (tmp_path / "index.json").exists()


def test_config_must_match_the_manifest(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER,))
    with pytest.raises(ImageFormatError, match="config"):
        bad = Image(image.manifest, mediatypes.OCI_MANIFEST, image.config + b" ", ())
        write_oci_layout(tmp_path, bad)
