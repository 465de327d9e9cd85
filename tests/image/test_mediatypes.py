"""Media type constants and helpers."""

from __future__ import annotations

import pytest

from kiln.image import mediatypes as mt


def test_constants_are_the_spec_strings() -> None:
    assert mt.DOCKER_MANIFEST == "application/vnd.docker.distribution.manifest.v2+json"
    assert mt.DOCKER_CONFIG == "application/vnd.docker.container.image.v1+json"
    assert mt.DOCKER_LAYER_GZIP == "application/vnd.docker.image.rootfs.diff.tar.gzip"
    assert mt.OCI_INDEX == "application/vnd.oci.image.index.v1+json"
    assert mt.OCI_LAYER_ZSTD == "application/vnd.oci.image.layer.v1.tar+zstd"


@pytest.mark.parametrize(
    ("media_type", "index", "manifest"),
    [
        (mt.OCI_INDEX, True, False),
        (mt.DOCKER_MANIFEST_LIST, True, False),
        (mt.OCI_MANIFEST, False, True),
        (mt.DOCKER_MANIFEST, False, True),
        (mt.DOCKER_SCHEMA1_SIGNED_MANIFEST, False, False),
        (mt.OCI_CONFIG, False, False),
    ],
)
def test_is_index_and_is_manifest(media_type: str, index: bool, manifest: bool) -> None:
    assert mt.is_index(media_type) is index
    assert mt.is_manifest(media_type) is manifest


@pytest.mark.parametrize(
    ("fmt", "compression", "expected"),
    [
        ("docker", "gzip", mt.DOCKER_LAYER_GZIP),
        ("docker", "none", mt.DOCKER_LAYER),
        ("oci", "gzip", mt.OCI_LAYER_GZIP),
        ("oci", "zstd", mt.OCI_LAYER_ZSTD),
        ("oci", "none", mt.OCI_LAYER),
    ],
)
def test_layer_media_type(fmt: str, compression: str, expected: str) -> None:
    assert mt.layer_media_type(fmt, compression) == expected
    assert mt.layer_compression(expected) == compression


def test_layer_media_type_rejects_unknown_combinations() -> None:
    with pytest.raises(ValueError, match="brotli"):
        mt.layer_media_type("oci", "brotli")
    with pytest.raises(ValueError):
        mt.layer_media_type("appc", "gzip")


def test_convert_layer_media_type_keeps_compression_and_foreign_layers() -> None:
    assert mt.convert_layer_media_type(mt.DOCKER_LAYER_GZIP, "oci") == mt.OCI_LAYER_GZIP
    assert mt.convert_layer_media_type(mt.OCI_LAYER, "docker") == mt.DOCKER_LAYER
    assert mt.convert_layer_media_type(mt.DOCKER_FOREIGN_LAYER, "oci") == mt.DOCKER_FOREIGN_LAYER


def test_image_format() -> None:
    assert mt.image_format(mt.DOCKER_MANIFEST_LIST) == "docker"
    assert mt.image_format(mt.OCI_CONFIG) == "oci"
    with pytest.raises(ValueError):
        mt.image_format("application/json")
