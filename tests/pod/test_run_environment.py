"""HOME and device nodes in RUN inside a default pod (where `auto` builds in place).

Issue 10.1: runc's HOME (the passwd home of the step's user) must hold in every isolation,
inplace included. Issue 11.3: inplace cannot mount, so kiln itself cannot stop a step from
opening device nodes; in a container the runtime's device cgroup does, as README says: a node
the step makes and one the base image ships do not open, the default ones do.
Judged from the pushed image, unpacked with umoci.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.isolation.test_run_devices import device_base
from tests.pod.test_pod_scenario import KUBERNETES_DEFAULT_CAPS, _run_executor
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.tools import umoci_unpack

pytestmark = [pytest.mark.podman, pytest.mark.root]

__all__ = ["device_base"]  # the busybox image with a loop-control node at /opt/shipped

DOCKERFILE = """\
FROM {base}
RUN echo "$HOME" > /tmp/home-root && chown app /home/app
USER app
RUN echo "$HOME" > /tmp/home-app && echo written > "$HOME/x"
USER root
RUN mknod /tmp/made c 10 237 && echo made > /tmp/mknod \\
 && for node in /tmp/made /opt/shipped; do \\
      if (exec 3<"$node") 2>/dev/null; then echo "$node opened"; \\
      else echo "$node refused"; fi; \\
    done > /tmp/opened \\
 && echo data > /dev/null && head -c 5 /dev/urandom | wc -c > /tmp/urandom
"""


def test_home_and_devices_in_a_pod(
    executor_image: str,
    device_base: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "Dockerfile").write_text(DOCKERFILE.format(base=device_base))
    ref = f"{registry.host}/pod-env/auto:1"
    caps = ["--cap-drop=ALL", *(f"--cap-add={cap}" for cap in KUBERNETES_DEFAULT_CAPS)]
    log = _run_executor(
        podman, executor_image, [f"{workspace}:/workspace"],
        "--context=dir:///workspace", f"--destination={ref}",
        f"--insecure-registry={registry.host}", caps=caps,
    )  # fmt: skip
    assert "Isolation: inplace" in log  # auto, in a default pod
    tmp = umoci_unpack(ref, tmp_path / "unpacked") / "tmp"
    assert (tmp / "home-root").read_text() == "/root\n"
    assert (tmp / "home-app").read_text() == "/home/app\n"
    assert (tmp.parent / "home" / "app" / "x").read_text() == "written\n"
    assert (tmp / "mknod").read_text() == "made\n"  # CAP_MKNOD, as in Docker
    assert (tmp / "opened").read_text().splitlines() == [
        "/tmp/made refused",
        "/opt/shipped refused",
    ]
    assert (tmp / "urandom").read_text().strip() == "5"
