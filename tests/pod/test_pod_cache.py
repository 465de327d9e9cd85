"""The registry layer cache where CI uses it: two fresh executor containers, one cache repo.

Each run is a new `podman run --rm` of kiln's executor image with Kubernetes' default
capabilities (so inplace isolation), with Kaniko's flags as a CI job has them. The second
container starts from nothing but the registry: its RUN steps must come from the cache repo (the
RUN writes random bytes, so a re-run would change the layer) and the image must be the first one.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.pod.test_pod_scenario import K8S_CAPS, _run_executor
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.tools import umoci_unpack

DOCKERFILE = """\
FROM {base}
COPY msg.txt /app/msg.txt
RUN od -An -tx1 -N16 /dev/urandom > /app/random
RUN cat /app/msg.txt /app/random > /app/both
"""


def _build(
    podman: Podman, image: str, workspace: Path, ref: str, cache_repo: str, host: str
) -> str:
    return _run_executor(
        podman,
        image,
        [f"{workspace}:/workspace"],
        "--context=dir:///workspace",
        f"--destination={ref}",
        f"--insecure-registry={host}",
        "--reproducible",
        "--cache=true",
        f"--cache-repo={cache_repo}",
        "--digest-file=/workspace/digest",
        caps=K8S_CAPS,
    )


def test_a_fresh_pod_builds_from_the_registry_cache(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text(DOCKERFILE.format(base=pod_base_image))
    (workspace / "msg.txt").write_text("hello\n")
    repo = f"{registry.host}/pod-cache-{uuid.uuid4().hex[:8]}"
    cache_repo = f"{repo}/cache"

    first = _build(podman, executor_image, workspace, f"{repo}/app:1", cache_repo, registry.host)
    assert "Isolation: inplace" in first
    assert ": CACHED" not in first
    cold = (workspace / "digest").read_text()

    second = _build(podman, executor_image, workspace, f"{repo}/app:2", cache_repo, registry.host)
    assert second.count(": CACHED") == 3, second[-3000:]  # COPY and both RUNs
    assert (workspace / "digest").read_text() == cold
    rootfs = umoci_unpack(f"{repo}/app:2", tmp_path / "check")
    random = (rootfs / "app" / "random").read_text()
    assert (rootfs / "app" / "both").read_text() == "hello\n" + random
