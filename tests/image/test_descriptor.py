"""Descriptor validation and JSON round trips; digest_of."""

from __future__ import annotations

import hashlib

import pytest

from kiln.errors import ImageFormatError
from kiln.image import Descriptor, Platform, digest_of, mediatypes
from kiln.image.digest import digest_hex

DIGEST = "sha256:" + "ab" * 32


def test_digest_of_is_sha256_of_the_bytes() -> None:
    assert digest_of(b"") == (
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert digest_of(b"kiln") == "sha256:" + hashlib.sha256(b"kiln").hexdigest()
    assert digest_hex(digest_of(b"kiln")) == hashlib.sha256(b"kiln").hexdigest()


def test_digest_hex_rejects_path_tricks() -> None:
    with pytest.raises(ValueError):
        digest_hex("sha256:../../etc/passwd")


def test_round_trip_full() -> None:
    data = {
        "mediaType": mediatypes.OCI_MANIFEST,
        "digest": DIGEST,
        "size": 42,
        "urls": ["https://example.com/blob"],
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
    }
    desc = Descriptor.from_dict(data)
    assert desc.platform == Platform("linux", "arm64", "v8")
    assert desc.urls == ("https://example.com/blob",)
    assert desc.to_dict() == data
    assert list(desc.to_dict()) == list(data)  # field order is the spec's


def test_minimal_descriptor_omits_optional_fields() -> None:
    desc = Descriptor(mediatypes.OCI_LAYER_GZIP, DIGEST, 7)
    assert desc.to_dict() == {"mediaType": mediatypes.OCI_LAYER_GZIP, "digest": DIGEST, "size": 7}


def test_descriptor_is_immutable_and_hashable() -> None:
    notes = {"a": "1"}
    desc = Descriptor(mediatypes.OCI_LAYER_GZIP, DIGEST, 7, annotations=notes)
    notes["a"] = "2"
    assert desc.annotations == {"a": "1"}
    assert desc == Descriptor(mediatypes.OCI_LAYER_GZIP, DIGEST, 7, annotations={"a": "1"})
    assert (
        len({desc, Descriptor(mediatypes.OCI_LAYER_GZIP, DIGEST, 7, annotations={"a": "1"})}) == 1
    )


@pytest.mark.parametrize(
    "data",
    [
        {"mediaType": "x", "digest": "sha256:short", "size": 1},
        {"mediaType": "x", "digest": DIGEST, "size": "1"},
        {"mediaType": "x", "digest": DIGEST, "size": True},
        {"mediaType": "x", "digest": DIGEST, "size": -1},
        {"digest": DIGEST, "size": 1},
        ["not", "an", "object"],
    ],
)
def test_from_dict_rejects_malformed(data: object) -> None:
    with pytest.raises(ImageFormatError):
        Descriptor.from_dict(data)
