"""Mirrors: a second real registry in front of the origin, with and without fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry_e2e.conftest import skopeo_copy, unique, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry


@pytest.fixture(scope="module")
def mirror() -> Iterator[RegistryServer]:
    with RegistryServer() as server:
        yield server


def _push_base(layout: Path, ref: str) -> None:
    skopeo_copy(f"oci:{layout}:latest", f"docker://{ref}", "--dest-tls-verify=false")


def _build(base: str, tmp_path: Path, dest: str, *flags: str) -> tuple[int, str]:
    context = write_context(tmp_path / "ctx", f"FROM {base}\nCOPY a /a\n", {"a": "a"})
    result = run_kiln("build", "-t", dest, str(context), *flags)
    return result.returncode, result.stderr


def test_registry_map_prefers_mirror_with_prefix_then_falls_back(
    registry: RegistryServer, mirror: RegistryServer, busybox_layout: Path, tmp_path: Path
) -> None:
    only_on_mirror, only_on_origin = unique("m"), unique("o")
    _push_base(busybox_layout, f"{mirror.host}/cache/{only_on_mirror}:latest")
    _push_base(busybox_layout, f"{registry.host}/{only_on_origin}:latest")
    flags = [
        "--registry-map", f"{registry.host}={mirror.host}/cache",
        "--insecure-registry", registry.host, "--insecure-registry", mirror.host,
    ]  # fmt: skip
    dest = f"{registry.host}/{unique()}:v1"
    # The origin does not have it: only the mirror (with its path prefix) can satisfy the pull.
    status, err = _build(f"{registry.host}/{only_on_mirror}", tmp_path / "1", dest, *flags)
    assert status == 0, err
    # The mirror lacks it: kiln falls back to the origin, saying so.
    status, err = _build(f"{registry.host}/{only_on_origin}", tmp_path / "2", dest, *flags)
    assert status == 0, err
    assert "trying the next source" in err
    # ... unless fallback is off.
    status, err = _build(
        f"{registry.host}/{only_on_origin}", tmp_path / "3", dest, *flags,
        "--skip-default-registry-fallback",
    )  # fmt: skip
    assert status != 0 and "MANIFEST_UNKNOWN" in err and "Traceback" not in err


def test_docker_hub_mirror_serves_short_names(
    registry: RegistryServer, mirror: RegistryServer, busybox_layout: Path, tmp_path: Path
) -> None:
    _push_base(busybox_layout, f"{mirror.host}/hub/library/busybox:latest")
    dest = f"{registry.host}/{unique()}:v1"
    status, err = _build(
        "busybox", tmp_path, dest,
        "--registry-mirror", f"{mirror.host}/hub", "--skip-default-registry-fallback",
        "--insecure-registry", registry.host, "--insecure-registry", mirror.host,
    )  # fmt: skip
    assert status == 0, err
