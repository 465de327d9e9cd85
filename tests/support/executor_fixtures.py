"""Fixtures for the pod scenario and the hostile-image suite: kiln's executor image, built once
per session by kiln itself (registered for the whole suite in tests/conftest.py).

Why here rather than in a conftest: every test directory that runs the image (tests/pod,
tests/hostile) must share one session fixture; a fixture re-imported into a second conftest is a
second fixture, built a second time. Why once: staging the self-contained /kiln runtime, building
it with `kiln build` and pulling it into podman is the expensive part of these tests (tens of
seconds); every pod test reuses it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.base_image import make_oci_layout, push_layout
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build-executor-image"


def build_executor(ref: str, *flags: str) -> None:
    """Run scripts/build-executor-image (self-hosting: it builds the image with kiln)."""
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *flags, ref],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]


@pytest.fixture(scope="session")
def executor_image(registry: RegistryServer) -> str:
    """kiln's executor image in the anonymous test registry (pushed over plain HTTP)."""
    ref = f"{registry.host}/kiln/executor:test"
    build_executor(ref)
    return ref


@pytest.fixture(scope="session")
def debug_executor_image(registry: RegistryServer, executor_image: str) -> str:
    """The -debug variant (a busybox shell under /busybox), built once like the plain one."""
    ref = f"{registry.host}/kiln/executor:test-debug"
    build_executor(ref, "--debug")
    return ref


@pytest.fixture(scope="session")
def pod_base_image(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox base image (the same one tests/e2e uses) in the anonymous registry."""
    layout = make_oci_layout(tmp_path_factory.mktemp("pod-busybox"))
    ref = f"{registry.host}/base/busybox:pod"
    push_layout(layout, "latest", ref)
    return ref


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    """podman with private storage, runc and host networking."""
    return Podman(tmp_path_factory.mktemp("podman-pod"))
