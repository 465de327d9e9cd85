"""Device nodes in RUN: only Docker's default set opens (issue 11.3).

Docker's device cgroup lets a container ``mknod`` any node but open only null, zero, full,
random, urandom, tty, console, ptmx and pts. kiln's namespaces backend gets the same effect with
mounts: the rootfs is remounted ``nodev`` for the step and ``/dev`` is a ``nodev`` tmpfs whose
allowed nodes are their own bind mounts. So a node a RUN makes (in ``/dev`` or elsewhere), and a
node a base-image layer ships, cannot be opened, while ``/dev/null`` and friends still work.
The probe device is loop-control (10:237), which opens here outside the sandbox.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.isolation.test_rootless import shared_dir
from tests.support.base_image import make_oci_layout, push_layout
from tests.support.registry_server import RegistryServer
from tests.support.rootless import rootless_user
from tests.support.tools import run_kiln, umoci_unpack

pytestmark = pytest.mark.root

__all__ = ["shared_dir"]  # the rootless tests' world-readable copy of kiln, as a fixture

PROBE = "/dev/loop-control"

# `(exec 3<PATH)` opens PATH in a subshell: one line per node, "made"/"not made" for mknod and
# "opened"/"refused"/"absent" for open.
DOCKERFILE = """
    FROM {base}
    RUN for node in /tmp/made /dev/made; do \\
          if mknod "$node" c 10 237 2>/dev/null; then echo "$node made"; \\
          else echo "$node not made"; fi; \\
        done > /tmp/mknod \\
     && for node in /tmp/made /dev/made /opt/shipped; do \\
          if [ ! -e "$node" ]; then echo "$node absent"; \\
          elif (exec 3<"$node") 2>/dev/null; then echo "$node opened"; \\
          else echo "$node refused"; fi; \\
        done > /tmp/opened \\
     && echo data > /dev/null && head -c 3 /dev/zero | wc -c > /tmp/zero \\
     && head -c 5 /dev/urandom | wc -c > /tmp/urandom \\
     && head -c 2 /dev/random | wc -c >> /tmp/urandom \\
     && (exec 3<>/dev/ptmx) && (exec 3</dev/full) && echo ok > /tmp/allowed
"""


def _context(parent: Path, base: str) -> Path:
    context = parent / "ctx"
    context.mkdir()
    context.chmod(0o755)
    (context / "Dockerfile").write_text(textwrap.dedent(DOCKERFILE.format(base=base)))
    return context


def _allowed_devices_work(tmp: Path) -> None:
    assert (tmp / "zero").read_text().strip() == "3"
    assert (tmp / "urandom").read_text().split() == ["5", "2"]
    assert (tmp / "allowed").read_text() == "ok\n"


@pytest.fixture(scope="module")
def device_base(registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox image plus a layer shipping a loop-control node at /opt/shipped."""
    workdir = tmp_path_factory.mktemp("device-base")
    layout = make_oci_layout(workdir)
    extra = workdir / "extra"
    (extra / "opt").mkdir(parents=True)
    os.mknod(extra / "opt" / "shipped", 0o600 | 0o020000, os.makedev(10, 237))
    subprocess.run(
        ["umoci", "insert", "--image", f"{layout}:latest", str(extra), "/"],
        check=True, capture_output=True,
    )  # fmt: skip
    ref = f"{registry.host}/base/with-device:1"
    push_layout(layout, "latest", ref)
    return ref


@pytest.mark.parametrize("snapshotter", ["overlay", "walk"])
def test_namespaces_open_only_dockers_devices(
    snapshotter: str, registry: RegistryServer, device_base: str, tmp_path: Path
) -> None:
    fd = os.open(PROBE, os.O_RDONLY)  # the control: outside the sandbox it opens
    os.close(fd)
    ref = f"{registry.host}/devices/{snapshotter}:1"
    result = run_kiln(
        "build", "-t", ref, "--isolation", "namespaces", "--snapshotter", snapshotter,
        "--insecure-registry", registry.host, "--work-dir", str(tmp_path / "work"),
        str(_context(tmp_path, device_base)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rootfs = umoci_unpack(ref, tmp_path / "unpacked")
    tmp = rootfs / "tmp"
    # mknod works, as under Docker
    assert (tmp / "mknod").read_text().splitlines() == ["/tmp/made made", "/dev/made made"]
    assert (tmp / "opened").read_text().splitlines() == [
        "/tmp/made refused",
        "/dev/made refused",
        "/opt/shipped refused",
    ]
    _allowed_devices_work(tmp)
    made = os.lstat(tmp / "made")  # the node the step made is in its layer, as with Docker
    assert os.major(made.st_rdev) == 10 and os.minor(made.st_rdev) == 237


def test_rootless_opens_no_image_device(
    shared_dir: Path, registry: RegistryServer, device_base: str, tmp_path: Path
) -> None:
    """Root in a user namespace may not make device nodes (as under rootless podman); the
    allowed devices, bound from the host, still work."""
    shared = shared_dir / "devices"
    shared.mkdir()
    ref = f"{registry.host}/devices/rootless:1"
    with rootless_user(subordinate_ids=True) as user:
        result = user.run_kiln(
            shared_dir, shared / "work", "build", "-t", ref,
            "--insecure-registry", registry.host, str(_context(shared, device_base)),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Isolation: namespaces (rootless" in result.stderr
    tmp = umoci_unpack(ref, tmp_path / "unpacked") / "tmp"
    assert (tmp / "mknod").read_text().splitlines() == ["/tmp/made not made", "/dev/made not made"]
    opened = (tmp / "opened").read_text().splitlines()
    assert opened[:2] == ["/tmp/made absent", "/dev/made absent"]
    # Unpacking in the user namespace cannot make the image's node either (kiln warns, skips it).
    assert opened[2] == "/opt/shipped absent"
    _allowed_devices_work(tmp)
