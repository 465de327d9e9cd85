"""SIGTERM/SIGINT to kiln as PID 1 of a container, as `kubectl delete pod` sends it (issue 11.4).

The kernel drops a signal to a container's PID 1 unless it has a handler, so without one kiln
would keep building until the runtime's SIGKILL. Run the executor image under podman with
Kubernetes' default capabilities (where `auto` builds in place), signal the container while it
runs a RUN step, compresses a layer or pushes through a slow link, and judge from outside: the
container exits 128+N at once with one line saying what was stopped, no process of the step is
left on the host, the mounted work dir and TMPDIR are empty, and the registry has no tag.
"""

from __future__ import annotations

import random
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.isolation.test_interrupt import _assert_no_tag
from tests.pod.test_pod_scenario import KUBERNETES_DEFAULT_CAPS
from tests.sandbox.support import host_processes_matching
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.relay import Relay

pytestmark = [pytest.mark.podman, pytest.mark.root]


class Container:
    """The executor running under podman in the background (mutable: a live process)."""

    def __init__(self, podman: Podman, tmp_path: Path, image: str, dockerfile: str, *flags: str):
        self.podman = podman
        self.name = f"kiln-signal-{secrets.token_hex(4)}"
        self.workspace, self.work, self.tmp = (tmp_path / d for d in ("workspace", "work", "tmp"))
        for directory in (self.workspace, self.work, self.tmp):
            directory.mkdir()
        (self.workspace / "Dockerfile").write_text(dockerfile)
        self.log = tmp_path / "kiln.log"
        caps = ["--cap-drop=ALL", *(f"--cap-add={cap}" for cap in KUBERNETES_DEFAULT_CAPS)]
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*podman._base(), "run", "--rm", "--name", self.name, "--network", "host",
                 "--tls-verify=false", *caps, "-e", "TMPDIR=/scratch",
                 "-v", f"{self.workspace}:/workspace", "-v", f"{self.work}:/work",
                 "-v", f"{self.tmp}:/scratch", image, "--context=dir:///workspace",
                 "--work-dir=/work", *flags],
                stdout=subprocess.DEVNULL, stderr=stderr, env=_podman_env(podman),
            )  # fmt: skip

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, condition: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 300
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"kiln never reached {what}:\n{self.log_text()}")
            time.sleep(0.1)

    def signal(self, signum: int) -> tuple[int, str]:
        """`podman kill --signal` (to PID 1, kiln itself); the container's exit status."""
        name = signal.Signals(signum).name
        subprocess.run(
            [*self.podman._base(), "kill", "--signal", name, self.name],
            check=True, capture_output=True, env=_podman_env(self.podman),
        )  # fmt: skip
        try:
            status = self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"kiln as PID 1 did not stop on {name}:\n{self.log_text()}")
        return status, self.log_text()

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        """Whatever failed, no container is left running."""
        if self.process.poll() is None:
            subprocess.run(
                [*self.podman._base(), "rm", "-f", self.name],
                capture_output=True, check=False, env=_podman_env(self.podman),
            )  # fmt: skip
            self.process.wait()

    def workspaces(self) -> list[Path]:
        return [p for p in self.work.iterdir() if p.name.startswith("kiln-")]


def _podman_env(podman: Podman) -> dict[str, str]:
    return {
        "CONTAINERS_CONF": str(podman.conf),
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(podman.root_dir),
    }


def _assert_stopped(container: Container, status: int, log: str, signum: int, during: str) -> None:
    assert status == 128 + signum, log
    errors = [line for line in log.splitlines() if line.startswith("ERRO")]
    assert len(errors) == 1, log
    assert f"interrupted by {signal.Signals(signum).name} during {during}" in errors[0], log
    assert "no tag was changed" in errors[0]
    assert list(container.work.iterdir()) == [], "the work dir was left behind"
    assert list(container.tmp.iterdir()) == [], "temporary files were left behind"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_pid1_signal_during_run(
    signum: int,
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    marker = str(random.randint(100_000, 999_999))
    repository = f"pod-signal/run-{signum}:1"
    dockerfile = f"FROM {pod_base_image}\nRUN (sleep {marker} &) && sleep {marker}\n"
    with Container(
        podman, tmp_path, executor_image, dockerfile,
        f"--destination={registry.host}/{repository}", f"--insecure-registry={registry.host}",
    ) as container:  # fmt: skip
        sleeping = "sleep\x00" + marker
        container.wait_for(lambda: len(host_processes_matching(sleeping)) == 2, "the RUN step")
        status, log = container.signal(signum)
    assert "Isolation: inplace" in log  # what auto picks in a default pod
    _assert_stopped(container, status, log, signum, "[stage 0] STEP 1/1: RUN (sleep")
    assert host_processes_matching(sleeping) == [], "the step's processes outlived kiln"
    _assert_no_tag(registry, repository)


def test_pid1_sigterm_during_compression(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    repository = "pod-signal/compression:1"
    dockerfile = f"FROM {pod_base_image}\nRUN seq 1 30000000 > /big\n"
    with Container(
        podman, tmp_path, executor_image, dockerfile, "--compression-level=9",
        f"--destination={registry.host}/{repository}", f"--insecure-registry={registry.host}",
    ) as container:  # fmt: skip

        def compressing() -> bool:
            return any(
                layer.stat().st_size > 0
                for workspace in container.workspaces()
                for layer in (workspace / "scratch").glob("*.layer")
            )

        container.wait_for(compressing, "the layer's compression")
        status, log = container.signal(signal.SIGTERM)
    _assert_stopped(container, status, log, signal.SIGTERM, "[stage 0] STEP 1/1: RUN seq")
    _assert_no_tag(registry, repository)


def test_pid1_sigterm_during_push(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    repository = "pod-signal/push:1"
    dockerfile = f"FROM {pod_base_image}\nRUN head -c 40000000 /dev/urandom > /big\n"
    with Relay(registry.host, upload_rate=2_000_000) as relay:  # 40 MB take ~20 s
        destination = f"{relay.host}/{repository}"
        with Container(
            podman, tmp_path, executor_image, dockerfile, f"--destination={destination}",
            f"--insecure-registry={registry.host}", f"--insecure-registry={relay.host}",
        ) as container:  # fmt: skip

            def pushing() -> bool:
                # 8 MB through the relay: the 40 MB layer (written in well under a second) is
                # on its way to the registry, which takes ~20 s at this rate.
                return "STEP 1/1: RUN" in container.log_text() and relay.uploaded > 8_000_000

            container.wait_for(pushing, "the push")
            status, log = container.signal(signal.SIGTERM)
    _assert_stopped(container, status, log, signal.SIGTERM, f"pushing to {destination}")
    _assert_no_tag(registry, repository)
