"""The chroot isolation in whole builds: Docker's /proc, /dev and /sys, or no chroot at all.

Issue 10.15: without mounts a chroot cannot give a RUN step `/proc`, `/sys`, `/dev/shm` or
`/dev/pts`, and without CAP_MKNOD not even `/dev/null` — `2>/dev/null` then wrote a regular file
into the image and `dd if=/dev/zero | sha256sum` hashed empty input. So chroot runs only with
mount rights, and with exactly Kubernetes' default capabilities an explicit `--isolation chroot`
fails before anything is pulled. (`auto` is never run here with reduced capabilities: this
machine is itself a container, where auto would rightly build in place over its `/`.)
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.sandbox.support import host_processes_matching
from tests.support.kernel_files import KERNEL_FILES_CHECK, check_kernel_files
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
    RUN mkdir /out && {check}
    RUN cat /etc/hosts > /hosts-seen && (sleep {marker} &) && id -u > /uid
    USER app
    RUN id > /tmp/app-id
"""


def _kiln(*args: str, caps: str | None = None) -> subprocess.CompletedProcess[str]:
    prefix = []
    if caps is not None:
        bounding = ",".join(f"+{cap}" for cap in caps.split(","))
        prefix = ["setpriv", f"--bounding-set=-all,{bounding}", "--inh-caps=-all", "--"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "kiln.cli.main", *args],
        capture_output=True, text=True, timeout=300, check=False, env=dict(os.environ),
    )  # fmt: skip


def test_chroot_with_mount_rights_gives_run_steps_proc_dev_and_sys(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    # A sleep duration unique to this run, so another test run's processes never match.
    marker = str(random.randint(100_000, 999_999))
    dockerfile = DOCKERFILE.format(base=base_image, marker=marker, check=KERNEL_FILES_CHECK)
    (context / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    (context / "file.txt").write_text("copied\n")
    ref = f"{registry.host}/isolation/chroot:1"
    result = _kiln(
        "build", "-t", ref, "--isolation", "chroot", "--insecure-registry", registry.host,
        "--work-dir", str(tmp_path / "work"), str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    log = result.stderr
    assert "Isolation: chroot (chosen with --isolation)" in log
    assert log.count("RUN steps share kiln's pid, ipc, uts and network namespaces") == 1
    assert "could not provide" not in log
    rootfs = umoci_unpack(ref, tmp_path / "unpacked")
    check_kernel_files(rootfs)
    assert (rootfs / "copied.txt").read_text() == "copied\n"
    assert "localhost" in (rootfs / "hosts-seen").read_text()
    assert (rootfs / "uid").read_text() == "0\n"
    assert (rootfs / "tmp" / "app-id").read_text().startswith("uid=1000(app) gid=1000(app)")
    # What kiln provided for the steps never reached a layer.
    for gone in ("etc/hosts", "etc/resolv.conf"):
        assert not (rootfs / gone).exists(), gone
    assert host_processes_matching("sleep\x00" + marker) == []


def test_chroot_without_mount_rights_is_refused_before_the_build(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    # Nothing listens on port 1: had kiln pulled before checking, the error would be that.
    (context / "Dockerfile").write_text("FROM 127.0.0.1:1/none/such:1\nRUN true\n")
    result = _kiln(
        "build", "--no-push", "--tar-path", str(tmp_path / "out.tar"), "--isolation", "chroot",
        "--work-dir", str(tmp_path / "work"), str(context), caps=K8S_DEFAULT_CAPS,
    )  # fmt: skip
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert (
        "the chroot isolation cannot run here: chroot isolation cannot give RUN steps /proc, "
        "/sys, /dev/shm and /dev/pts without mount rights (CAP_SYS_ADMIN)"
    ) in result.stderr
    assert "127.0.0.1:1" not in result.stderr
    assert not (tmp_path / "out.tar").exists()
