"""write_docker_archive, checked by skopeo and podman (real loaders)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest

from kiln.errors import DigestMismatchError, ImageFormatError, LayerError
from kiln.image import digest_of, write_docker_archive
from tests.image.layers import DictBlobs, Layer, SampleImage, make_image, make_layer

BASE_LAYER = make_layer({"etc/os-release": b"ID=kiln\n", "bin/hello": b"#!/bin/sh\necho hi\n"})
APP_LAYER = make_layer({"app/main.txt": b"hello " * 1000})
PLAIN_LAYER = make_layer({"plain.txt": b"not compressed\n"}, compress=False)

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
[engine]
events_logger = "file"
cgroup_manager = "cgroupfs"
"""


def _write(path: Path, image: SampleImage, tags: list[str], blobs: DictBlobs | None = None) -> None:
    write_docker_archive(path, image.image(blobs), repo_tags=tags)


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as archive:
        out: dict[str, bytes] = {}
        for member in archive.getmembers():
            handle = archive.extractfile(member)
            out[member.name] = handle.read() if handle else b""
        return out


def test_archive_has_docker_save_layout(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER, PLAIN_LAYER))
    path = tmp_path / "image.tar"
    _write(path, image, ["example.com/app:1.0", "localhost:5000/app:latest"])
    files = _members(path)
    config_name = "blobs/sha256/" + digest_of(image.config).split(":")[1]
    layer_names = [f"blobs/sha256/{layer.digest.split(':')[1]}" for layer in image.layers]
    assert json.loads(files["manifest.json"]) == [
        {
            "Config": config_name,
            "RepoTags": ["example.com/app:1.0", "localhost:5000/app:latest"],
            "Layers": layer_names,
        }
    ]
    assert files[config_name] == image.config
    for layer, name in zip(image.layers, layer_names, strict=True):
        assert files[name] == layer.blob  # the blob the manifest names, as stored
    top = image.layers[-1].diff_id.split(":")[1]
    assert json.loads(files["repositories"]) == {
        "example.com/app": {"1.0": top},
        "localhost:5000/app": {"latest": top},
    }
    # It is also an OCI layout holding the manifest itself.
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    (entry,) = json.loads(files["index.json"])["manifests"]
    assert entry["digest"] == digest_of(image.manifest)
    assert entry["annotations"]["org.opencontainers.image.ref.name"] == "1.0"
    assert files["blobs/sha256/" + entry["digest"].split(":")[1]] == image.manifest


def test_repeated_layer_is_stored_once(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER, BASE_LAYER))
    path = tmp_path / "image.tar"
    _write(path, image, [])
    files = _members(path)
    manifest = json.loads(files["manifest.json"])[0]
    assert len(manifest["Layers"]) == 3
    assert manifest["Layers"][0] == manifest["Layers"][2]
    with tarfile.open(path) as archive:
        names = archive.getnames()
    assert len(names) == len(set(names))
    assert {BASE_LAYER.blob, APP_LAYER.blob} <= set(files.values())
    assert "repositories" not in files


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
def test_skopeo_reads_it_as_an_oci_archive_with_the_same_digest(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER))  # OCI media types: skopeo reads the layout part
    path = tmp_path / "image.tar"
    _write(path, image, ["example.com/app:1.0"])
    out = subprocess.run(
        ["skopeo", "inspect", "--raw", f"oci-archive:{path}"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert out == image.manifest


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
def test_skopeo_reads_the_archive(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER))
    path = tmp_path / "image.tar"
    _write(path, image, ["example.com/app:1.0"])
    out = subprocess.run(
        ["skopeo", "inspect", f"docker-archive:{path}"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    info: dict[str, Any] = json.loads(out)
    assert info["Layers"] == [BASE_LAYER.diff_id, APP_LAYER.diff_id]
    assert info["Architecture"] == "amd64"
    raw_config = subprocess.run(
        ["skopeo", "inspect", "--config", "--raw", f"docker-archive:{path}"],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    assert raw_config == image.config


@pytest.mark.podman
@pytest.mark.skipif(shutil.which("podman") is None, reason="needs podman")
def test_podman_loads_the_archive(tmp_path: Path) -> None:
    # podman limits --runroot to 50 characters, too short for pytest's tmp_path.
    runroot = Path(tempfile.mkdtemp(prefix="kiln-rr-"))
    try:
        _load_with_podman(tmp_path, runroot)
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _load_with_podman(tmp_path: Path, runroot: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER, PLAIN_LAYER))
    path = tmp_path / "image.tar"
    _write(path, image, ["example.com/kiln-test:1.0"])
    conf = tmp_path / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    podman = [
        "podman",
        "--root",
        str(tmp_path / "root"),
        "--runroot",
        str(runroot),
        "--storage-driver",
        "vfs",
    ]
    load = subprocess.run(
        [*podman, "load", "-i", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert load.returncode == 0, load.stderr
    assert "example.com/kiln-test:1.0" in load.stdout
    out = subprocess.run(
        [*podman, "image", "inspect", "example.com/kiln-test:1.0"],
        check=True,
        capture_output=True,
        env=env,
        timeout=60,
    ).stdout
    inspected = json.loads(out)[0]
    assert inspected["Id"] == digest_of(image.config).split(":")[1]
    assert inspected["Config"]["Cmd"] == ["/bin/true"]
    assert inspected["RootFS"]["Layers"] == [layer.diff_id for layer in image.layers]


def test_wrong_diff_id_is_refused_and_nothing_is_left(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER,))
    blobs = DictBlobs()
    # Same diff_id, but the blob decompresses to something else.
    other = make_layer({"other": b"x"})
    blobs.blobs[BASE_LAYER.digest] = other.blob
    lying = Layer(other.blob, BASE_LAYER.digest, BASE_LAYER.diff_id, BASE_LAYER.tar)
    path = tmp_path / "image.tar"
    with pytest.raises(DigestMismatchError):
        _write(path, SampleImage(image.config, image.manifest, (lying,)), [], blobs)
    assert list(tmp_path.iterdir()) == []


def test_layers_must_match_config_diff_ids(tmp_path: Path) -> None:
    image = make_image((BASE_LAYER, APP_LAYER))
    with pytest.raises(ImageFormatError, match="diff_ids"):
        _write(tmp_path / "x.tar", SampleImage(image.config, image.manifest, (BASE_LAYER,)), [])


def test_zstd_layers_are_refused_with_a_hint(tmp_path: Path) -> None:
    zstd_blob = b"\x28\xb5\x2f\xfd" + b"\0" * 16
    fake = Layer(zstd_blob, digest_of(zstd_blob), BASE_LAYER.diff_id, BASE_LAYER.tar)
    image = make_image((fake,))
    blobs = DictBlobs({fake.digest: zstd_blob})
    with pytest.raises(LayerError) as info:
        _write(tmp_path / "x.tar", image, [], blobs)
    assert info.value.hint
