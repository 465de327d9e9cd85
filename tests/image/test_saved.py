"""load_saved: a saved image read back as an ``Image`` whose layers work like any other.

A layer read from a layout or an old ``docker save`` tarball must be usable by the same writers
(and pushes) as a built or pulled one; these tests write what they load again and compare.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from kiln.errors import UsageError
from kiln.image import (
    HistoryEntry,
    Image,
    ImageConfig,
    digest_of,
    load_saved,
    mediatypes,
    write_docker_archive,
    write_oci_layout,
)
from tests.image.layers import make_image, make_layer

BASE_LAYER = make_layer({"etc/os-release": b"ID=kiln\n"})
APP_LAYER = make_layer({"app/main.txt": b"hello " * 1000})


def _tar_bytes(image: Image) -> list[bytes]:
    out = []
    for layer in image.layers:
        with layer.open_uncompressed() as stream:
            out.append(stream.read())
    return out


def test_a_layout_round_trips_with_its_digest(tmp_path: Path) -> None:
    sample = make_image((BASE_LAYER, APP_LAYER))
    write_oci_layout(tmp_path / "layout", sample.image(), tag="v1")
    loaded = load_saved(tmp_path / "layout", tmp_path / "scratch", "v1")
    assert loaded.digest == digest_of(sample.manifest)
    assert loaded.config == sample.config
    assert [layer.diff_id for layer in loaded.layers] == [BASE_LAYER.diff_id, APP_LAYER.diff_id]
    assert _tar_bytes(loaded) == [BASE_LAYER.tar, APP_LAYER.tar]
    # A loaded layer is a layer: the archive writer takes it as it is.
    write_docker_archive(tmp_path / "again.tar", loaded, ["example.com/app:1"])
    assert load_saved(tmp_path / "again.tar", tmp_path / "scratch2").digest == loaded.digest


def test_an_old_docker_save_archive_gets_gzip_layers_with_their_diff_ids(tmp_path: Path) -> None:
    """No index.json: the tars are compressed and a Docker manifest is made for them."""
    config = ImageConfig.empty()
    for layer in (BASE_LAYER, APP_LAYER):
        config = config.with_layer(layer.diff_id, HistoryEntry("2024-01-02T03:04:05Z", "COPY"))
    config_bytes = config.to_json()
    members = {
        "manifest.json": json.dumps(
            [{"Config": "config.json", "RepoTags": [], "Layers": ["a/layer.tar", "b/layer.tar"]}]
        ).encode(),
        "config.json": config_bytes,
        "a/layer.tar": BASE_LAYER.tar,
        "b/layer.tar": APP_LAYER.tar,
    }
    archive = tmp_path / "old.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    loaded = load_saved(archive, tmp_path / "scratch")
    assert loaded.manifest_media_type == mediatypes.DOCKER_MANIFEST
    assert [layer.diff_id for layer in loaded.layers] == list(config.diff_ids)
    assert {layer.media_type for layer in loaded.layers} == {mediatypes.DOCKER_LAYER_GZIP}
    assert _tar_bytes(loaded) == [BASE_LAYER.tar, APP_LAYER.tar]
    for stored in loaded.layers:
        with stored.open_compressed() as blob:
            data = blob.read()
        assert (digest_of(data), len(data)) == (stored.digest, stored.size)
    # The same archive always gives the same image (mtime 0 in the gzip header).
    assert load_saved(archive, tmp_path / "scratch2").digest == loaded.digest
    write_oci_layout(tmp_path / "layout", loaded, tag="old")  # verifies every blob again


def test_a_layout_with_two_images_needs_a_tag(tmp_path: Path) -> None:
    write_oci_layout(tmp_path, make_image((BASE_LAYER,)).image(), tag="a")
    write_oci_layout(tmp_path, make_image((APP_LAYER,)).image(), tag="b")
    with pytest.raises(UsageError, match="expected exactly one image"):
        load_saved(tmp_path, tmp_path / "scratch")
    assert load_saved(tmp_path, tmp_path / "scratch", "b").layers[0].digest == APP_LAYER.digest


def test_uncompressed_streams_close_their_blob() -> None:
    opened: list[io.BytesIO] = []

    class Blobs:
        def open(self, digest: str) -> io.BytesIO:
            opened.append(io.BytesIO(BASE_LAYER.blob))
            return opened[-1]

    layer = make_image((BASE_LAYER,)).image(Blobs()).layers[0]
    with layer.open_uncompressed() as stream:
        assert stream.read() == BASE_LAYER.tar
    assert opened and opened[0].closed
