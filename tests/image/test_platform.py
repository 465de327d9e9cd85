"""Platform parsing, normalisation and index selection (containerd's matching rules)."""

from __future__ import annotations

import pytest

from kiln.errors import ImageFormatError, UsageError
from kiln.image import Descriptor, Index, Platform, mediatypes


def _entry(n: int, platform: str | None, media_type: str = mediatypes.OCI_MANIFEST) -> Descriptor:
    return Descriptor(
        media_type,
        "sha256:" + f"{n:x}" * 64,
        100 + n,
        platform=Platform.parse(platform) if platform else None,
    )


INDEX = Index(
    mediatypes.OCI_INDEX,
    (
        _entry(1, "linux/amd64"),
        _entry(2, "linux/arm64/v8"),
        _entry(3, "linux/arm/v6"),
        _entry(4, "linux/arm/v7"),
        _entry(5, "linux/386"),
        _entry(6, "windows/amd64"),
        _entry(7, "linux/ppc64le"),
    ),
)


@pytest.mark.parametrize(
    ("wanted", "chosen"),
    [
        ("linux/amd64", 1),
        ("linux/x86_64", 1),
        ("linux/amd64/v1", 1),
        ("linux/amd64/v3", 1),  # v3 hosts run v1 images
        ("linux/arm64", 2),  # no variant means v8
        ("linux/aarch64", 2),
        ("linux/arm64/v8", 2),
        ("linux/arm", 4),  # no variant means v7
        ("linux/arm/v7", 4),
        ("linux/arm/v8", 4),  # newest compatible variant wins over older
        ("linux/arm/v6", 3),
        ("linux/i386", 5),
        ("windows/amd64", 6),
        ("LINUX/AMD64", 1),
        ("linux/arm/v5", None),
        ("linux/s390x", None),
        ("darwin/arm64", None),
    ],
)
def test_index_select(wanted: str, chosen: int | None) -> None:
    result = INDEX.select(Platform.parse(wanted))
    if chosen is None:
        assert result is None
    else:
        assert result is INDEX.manifests[chosen - 1]


def test_select_arm64_index_entry_without_variant() -> None:
    index = Index(
        mediatypes.DOCKER_MANIFEST_LIST, (_entry(1, "linux/arm64", mediatypes.DOCKER_MANIFEST),)
    )
    assert index.select(Platform.parse("linux/arm64/v8")) is index.manifests[0]


def test_select_skips_attestations_and_entries_without_platform() -> None:
    attestation = _entry(1, "unknown/unknown")
    no_platform = _entry(2, None)
    real = _entry(3, "linux/amd64")
    index = Index(mediatypes.OCI_INDEX, (attestation, no_platform, real))
    assert index.select(Platform("linux", "amd64")) is real


def test_select_first_of_equal_matches_wins() -> None:
    index = Index(mediatypes.OCI_INDEX, (_entry(1, "linux/amd64"), _entry(2, "linux/amd64")))
    assert index.select(Platform("linux", "amd64")) is index.manifests[0]


def test_parse_and_str_round_trip() -> None:
    assert Platform.parse("linux/arm/v7") == Platform("linux", "arm", "v7")
    assert str(Platform("linux", "arm64", "v8")) == "linux/arm64/v8"
    assert str(Platform("linux", "amd64")) == "linux/amd64"
    for bad in ("linux", "linux/", "a/b/c/d"):
        with pytest.raises(UsageError, match="invalid platform"):
            Platform.parse(bad)


def test_dict_round_trip_with_os_fields() -> None:
    data = {
        "architecture": "amd64",
        "os": "windows",
        "os.version": "10.0.17763.1",
        "os.features": ["win32k"],
    }
    platform = Platform.from_dict(data)
    assert platform.os_version == "10.0.17763.1"
    assert platform.os_features == ("win32k",)
    assert platform.to_dict() == data


def test_from_dict_requires_os_and_architecture() -> None:
    with pytest.raises(ImageFormatError):
        Platform.from_dict({"os": "linux"})
