"""Fixtures for end-to-end builds: a busybox base image in the test registry, and podman."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.base_image import make_oci_layout, push_layout
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer


@pytest.fixture(scope="session")
def busybox_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The busybox base image as an OCI layout (tag `latest`)."""
    return make_oci_layout(tmp_path_factory.mktemp("busybox"))


@pytest.fixture(scope="session")
def base_image(registry: RegistryServer, busybox_layout: Path) -> str:
    """`HOST/base/busybox:latest` in the anonymous test registry."""
    ref = f"{registry.host}/base/busybox:latest"
    push_layout(busybox_layout, "latest", ref)
    return ref


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """podman with private storage, runc and host networking."""
    yield Podman(tmp_path_factory.mktemp("podman"))
