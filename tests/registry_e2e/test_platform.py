"""``--platform`` against a single-platform base image in a real registry: the busybox base is
amd64 only (its config says so), so asking for arm64 is an error naming the image and what it
provides, while the platform it does provide (with aliases and default variants) still works.
The index case is in test_outputs.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from kiln.errors import RegistryError
from kiln.image import Platform
from kiln.registry import Reference, RegistryClient, pull_image
from tests.registry_e2e.conftest import write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, skopeo_inspect

pytestmark = pytest.mark.registry


def _build(context: Path, registry: RegistryServer, *flags: str) -> tuple[int, str]:
    result = run_kiln(
        "build", "--no-push", "--insecure-registry", registry.host, *flags, str(context)
    )
    return result.returncode, result.stderr


def test_amd64_only_base_refuses_arm64(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    assert skopeo_inspect(base_image)["Architecture"] == "amd64"  # independent: amd64 only
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\n", {"a": "a"})
    status, stderr = _build(context, registry, "--platform", "linux/arm64")
    assert status == 1, stderr
    assert base_image in stderr
    assert "no image for platform linux/arm64" in stderr
    assert "single-platform image for linux/amd64" in stderr
    assert "Traceback" not in stderr
    pulled = {line.split()[-1] for line in stderr.splitlines() if "Pulling blob" in line}
    config = skopeo_inspect(base_image, "--raw")["config"]["digest"]
    assert pulled <= {config}  # refused before any layer was downloaded

    # FROM --platform in the Dockerfile is checked the same way.
    pinned = write_context(
        tmp_path / "pinned", f"FROM --platform=linux/arm64/v8 {base_image}\nCOPY a /a\n", {"a": "a"}
    )
    status, stderr = _build(pinned, registry)
    assert status == 1 and "no image for platform linux/arm64/v8" in stderr, stderr


def test_matching_platform_spellings_and_scratch_still_build(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\n", {"a": "a"})
    for platform in ("linux/amd64", "linux/x86_64", "linux/amd64/v1"):
        status, stderr = _build(context, registry, "--platform", platform)
        assert status == 0, f"{platform}: {stderr}"
    scratch = write_context(tmp_path / "scratch", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    status, stderr = _build(scratch, registry, "--platform", "linux/arm64")
    assert status == 0, stderr


def test_pull_image_checks_a_single_manifest(registry: RegistryServer, base_image: str) -> None:
    ref = Reference.parse(base_image)
    with RegistryClient(registry.host, insecure=True) as client:
        assert pull_image(client, ref, Platform("linux", "amd64")).layers
        with pytest.raises(RegistryError, match="single-platform image for linux/amd64"):
            pull_image(client, ref, Platform("linux", "arm64", "v8"))


def test_warm_refuses_a_platform_the_base_lacks(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    result = run_kiln(
        "warm", "--cache-dir", str(tmp_path / "cache"), "--insecure-registry", registry.host,
        "--platform", "linux/s390x", "-i", base_image,
    )  # fmt: skip
    assert result.returncode == 1
    assert "no image for platform linux/s390x" in result.stderr
