"""Which platform a base image provides: index entries and single-manifest configs are matched
with one rule (containerd's: aliases, default variants, older compatible variants)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kiln.errors import RegistryError
from kiln.image import Index, Platform, mediatypes, parse_manifest
from kiln.registry import check_platform


@pytest.mark.parametrize(
    ("config", "wanted"),
    [
        (("linux", "amd64", None), ("linux", "amd64", None)),
        (("linux", "arm64", None), ("linux", "arm64", "v8")),  # arm64 is arm64/v8
        (("linux", "arm64", "v8"), ("linux", "arm64", None)),
        (("linux", "aarch64", None), ("linux", "arm64", None)),
        (("linux", "x86_64", None), ("linux", "amd64", None)),
        (("linux", "arm", "v6"), ("linux", "arm", "v7")),  # a v7 host runs v6 images
        (("", "", None), ("linux", "arm64", None)),  # a config naming no platform
    ],
)
def test_matching_configs_pass(
    config: tuple[str, str, str | None], wanted: tuple[str, str, str | None]
) -> None:
    check_platform(Platform(*config), Platform(*wanted), "reg/img:1")


@pytest.mark.parametrize(
    ("config", "wanted"),
    [
        (("linux", "amd64", None), ("linux", "arm64", None)),
        (("linux", "arm", "v7"), ("linux", "arm", "v6")),  # newer variant than asked for
        (("linux", "amd64", "v3"), ("linux", "amd64", None)),
        (("windows", "amd64", None), ("linux", "amd64", None)),
    ],
)
def test_other_platforms_are_refused(
    config: tuple[str, str, str | None], wanted: tuple[str, str, str | None]
) -> None:
    with pytest.raises(RegistryError) as caught:
        check_platform(Platform(*config), Platform(*wanted), "reg/img:1")
    text = str(caught.value)
    assert text.startswith("reg/img:1: no image for platform")
    assert f"single-platform image for {Platform(*config)}" in text


def _index(*platforms: dict[str, Any] | None) -> Index:
    """An index as a registry serves it, parsed as a pull parses it."""
    entries = []
    for n, platform in enumerate(platforms):
        entry: dict[str, Any] = {
            "mediaType": mediatypes.OCI_MANIFEST,
            "digest": f"sha256:{n:064x}",
            "size": 1,
        }
        if platform is not None:
            entry["platform"] = platform
        entries.append(entry)
    document = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": entries}
    parsed = parse_manifest(json.dumps(document).encode(), mediatypes.OCI_INDEX)
    assert isinstance(parsed, Index)
    return parsed


def test_index_selection_uses_the_same_rule() -> None:
    index = _index(
        None,  # an attestation: never chosen
        {"os": "linux", "architecture": "arm", "variant": "v6"},
        {"os": "linux", "architecture": "arm64"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "amd64"},
    )
    assert index.select(Platform("linux", "arm64", "v8")) == index.manifests[2]
    assert index.select(Platform("linux", "arm")) == index.manifests[3]  # v7: exact
    assert index.select(Platform("linux", "arm", "v6")) == index.manifests[1]
    assert index.select(Platform("linux", "x86_64")) == index.manifests[4]
    assert index.select(Platform("linux", "s390x")) is None
