"""Manifest and index building and parsing."""

from __future__ import annotations

import json

import pytest

from kiln.errors import ImageFormatError
from kiln.image import (
    Descriptor,
    Index,
    Manifest,
    Platform,
    build_index,
    build_manifest,
    digest_of,
    mediatypes,
    parse_manifest,
)

CONFIG = Descriptor(mediatypes.DOCKER_CONFIG, "sha256:" + "1" * 64, 1234)
LAYERS = (
    Descriptor(mediatypes.DOCKER_LAYER_GZIP, "sha256:" + "2" * 64, 100),
    Descriptor(mediatypes.DOCKER_LAYER_GZIP, "sha256:" + "3" * 64, 200),
)


def test_docker_manifest_shape() -> None:
    doc = json.loads(build_manifest(CONFIG, LAYERS))
    assert doc == {
        "schemaVersion": 2,
        "mediaType": mediatypes.DOCKER_MANIFEST,
        "config": {"mediaType": mediatypes.DOCKER_CONFIG, "digest": CONFIG.digest, "size": 1234},
        "layers": [layer.to_dict() for layer in LAYERS],
    }
    assert list(doc) == ["schemaVersion", "mediaType", "config", "layers"]


def test_oci_manifest_round_trip_with_annotations() -> None:
    config = Descriptor(mediatypes.OCI_CONFIG, CONFIG.digest, CONFIG.size)
    layers = tuple(
        Descriptor(mediatypes.OCI_LAYER_GZIP, layer.digest, layer.size) for layer in LAYERS
    )
    data = build_manifest(config, layers, "oci", {"org.opencontainers.image.created": "now"})
    assert json.loads(data)["mediaType"] == mediatypes.OCI_MANIFEST
    parsed = parse_manifest(data, mediatypes.OCI_MANIFEST)
    assert isinstance(parsed, Manifest)
    assert parsed.media_type == mediatypes.OCI_MANIFEST
    assert parsed.config == config
    assert parsed.layers == layers
    assert parsed.annotations == {"org.opencontainers.image.created": "now"}
    assert parsed.to_json() == data


def test_build_manifest_is_deterministic_and_compact() -> None:
    a = build_manifest(CONFIG, LAYERS)
    assert a == build_manifest(CONFIG, list(LAYERS))
    assert b" " not in a


def test_docker_manifest_refuses_annotations() -> None:
    with pytest.raises(ValueError):
        build_manifest(CONFIG, LAYERS, "docker", {"a": "b"})


def test_media_type_comes_from_argument_then_document_then_shape() -> None:
    data = build_manifest(CONFIG, LAYERS)
    assert parse_manifest(data, None).media_type == mediatypes.DOCKER_MANIFEST
    # A generic Content-Type (misconfigured registry) falls back to the document.
    assert parse_manifest(data, "application/json").media_type == mediatypes.DOCKER_MANIFEST
    # Content-Type parameters are ignored.
    with_params = mediatypes.DOCKER_MANIFEST + "; charset=utf-8"
    assert parse_manifest(data, with_params).media_type == mediatypes.DOCKER_MANIFEST
    # OCI documents may omit mediaType entirely.
    doc = json.loads(data)
    del doc["mediaType"]
    bare = json.dumps(doc).encode()
    assert parse_manifest(bare, None).media_type == mediatypes.OCI_MANIFEST
    assert parse_manifest(bare, mediatypes.DOCKER_MANIFEST).media_type == mediatypes.DOCKER_MANIFEST
    bare_index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(parse_manifest(bare_index, None), Index)


def test_index_round_trip_and_select() -> None:
    amd = Descriptor(
        mediatypes.DOCKER_MANIFEST, "sha256:" + "4" * 64, 500, platform=Platform("linux", "amd64")
    )
    arm = Descriptor(
        mediatypes.DOCKER_MANIFEST,
        "sha256:" + "5" * 64,
        501,
        platform=Platform("linux", "arm", "v7"),
    )
    data = build_index([amd, arm], "docker")
    parsed = parse_manifest(data, mediatypes.DOCKER_MANIFEST_LIST)
    assert isinstance(parsed, Index)
    assert parsed.manifests == (amd, arm)
    assert parsed.select(Platform("linux", "arm")) == arm
    assert parsed.platforms() == (Platform("linux", "amd64"), Platform("linux", "arm", "v7"))
    assert json.loads(build_index([amd], "oci"))["mediaType"] == mediatypes.OCI_INDEX


def test_digest_of_manifest_bytes() -> None:
    data = build_manifest(CONFIG, LAYERS)
    assert digest_of(data).startswith("sha256:")
    assert digest_of(data) != digest_of(build_manifest(CONFIG, LAYERS[:1]))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"{", "JSON"),
        (b"[]", "object"),
        (b'{"schemaVersion": 1, "name": "x", "fsLayers": []}', "schema 1"),
        (b'{"schemaVersion": 3, "config": {}}', "schemaVersion"),
        (b'{"schemaVersion": 2, "mediaType": "text/plain"}', "text/plain"),
        (b'{"schemaVersion": 2}', "manifest or an index"),
        (b'{"schemaVersion": 2, "config": {"digest": "sha256:x"}, "layers": []}', "descriptor"),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": mediatypes.OCI_MANIFEST, "config": None}
            ).encode(),
            "descriptor",
        ),
    ],
)
def test_parse_rejects_malformed(data: bytes, match: str) -> None:
    with pytest.raises(ImageFormatError, match=match):
        parse_manifest(data, None)


def test_schema1_error_has_a_hint() -> None:
    data = b'{"schemaVersion": 1}'
    with pytest.raises(ImageFormatError) as info:
        parse_manifest(data, mediatypes.DOCKER_SCHEMA1_SIGNED_MANIFEST)
    assert info.value.hint
