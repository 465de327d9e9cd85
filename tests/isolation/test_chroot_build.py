"""A whole build with exactly Kubernetes' default capabilities: `auto` must choose chroot."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.sandbox.support import host_processes_matching
from tests.support.registry_server import RegistryServer
from tests.support.tools import umoci_unpack

pytestmark = pytest.mark.root

#: containerd's (and so a default Kubernetes pod's) capability set: no SYS_ADMIN.
K8S_DEFAULT_CAPS = (
    "chown,dac_override,fsetid,fowner,mknod,net_raw,setgid,setuid,setfcap,setpcap,"
    "net_bind_service,sys_chroot,kill,audit_write"
)

DOCKERFILE = """
    FROM {base}
    COPY file.txt /copied.txt
    RUN echo quiet > /dev/null && cat /etc/hosts > /hosts-seen && (sleep {marker} &) && id -u > /uid
    USER app
    RUN id > /tmp/app-id
"""


def test_default_pod_capabilities_build_with_chroot(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    # A sleep duration unique to this run, so another test run's processes never match.
    marker = str(random.randint(100_000, 999_999))
    dockerfile = DOCKERFILE.format(base=base_image, marker=marker)
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    (context / "file.txt").write_text("copied\n")
    ref = f"{registry.host}/isolation/chroot:1"
    bounding = ",".join(f"+{cap}" for cap in K8S_DEFAULT_CAPS.split(","))
    result = subprocess.run(
        ["setpriv", f"--bounding-set=-all,{bounding}", "--inh-caps=-all", "--",
         sys.executable, "-m", "kiln.cli.main", "build", "-t", ref,
         "--insecure-registry", registry.host, "--work-dir", str(tmp_path / "work"),
         str(context)],
        capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert "Isolation: chroot (namespaces backend needs CAP_SYS_ADMIN)" in log
    assert log.count("chroot isolation cannot provide /proc") == 1
    assert "Snapshotter: walk" in log  # no mounts allowed either
    rootfs = umoci_unpack(ref, tmp_path / "unpacked")
    assert (rootfs / "copied.txt").read_text() == "copied\n"
    assert "localhost" in (rootfs / "hosts-seen").read_text()
    assert (rootfs / "uid").read_text() == "0\n"
    assert (rootfs / "tmp" / "app-id").read_text().startswith("uid=1000(app) gid=1000(app)")
    # What kiln provided for the steps never reached a layer.
    assert not (rootfs / "etc" / "hosts").exists()
    assert not (rootfs / "etc" / "resolv.conf").exists()
    assert not (rootfs / "dev").exists()
    assert host_processes_matching("sleep\x00" + marker) == []
