"""Which platform a base image provides: index entries and single-manifest configs are matched
with one rule (containerd's: aliases, default variants, older compatible variants)."""

from __future__ import annotations

from typing import Any

import pytest

from kiln.errors import RegistryError
from kiln.image import Platform
from kiln.registry import check_platform, select_platform


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
    check_platform(Platform(*config), wanted, "reg/img:1")


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
        check_platform(Platform(*config), wanted, "reg/img:1")
    text = str(caught.value)
    assert text.startswith("reg/img:1: no image for platform")
    assert f"single-platform image for {Platform(*config)}" in text


def _index(*platforms: dict[str, Any] | None) -> dict[str, Any]:
    entries = []
    for n, platform in enumerate(platforms):
        entry: dict[str, Any] = {"digest": f"sha256:{n}"}
        if platform is not None:
            entry["platform"] = platform
        entries.append(entry)
    return {"manifests": entries}


def test_index_selection_uses_the_same_rule() -> None:
    index = _index(
        None,  # an attestation: never chosen
        {"os": "linux", "architecture": "arm", "variant": "v6"},
        {"os": "linux", "architecture": "arm64"},
        {"os": "linux", "architecture": "arm", "variant": "v7"},
        {"os": "linux", "architecture": "amd64"},
    )
    assert select_platform(index, ("linux", "arm64", "v8")) == index["manifests"][2]
    assert select_platform(index, ("linux", "arm", None)) == index["manifests"][3]  # v7: exact
    assert select_platform(index, ("linux", "arm", "v6")) == index["manifests"][1]
    assert select_platform(index, ("linux", "x86_64", None)) == index["manifests"][4]
    assert select_platform(index, ("linux", "s390x", None)) is None
