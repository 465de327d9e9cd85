"""Helpers for sandbox tests: a real busybox rootfs; views of host processes and mounts."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
from pathlib import Path

from kiln.sandbox import RunSpec
from kiln.sandbox.spec import Runner

BUSYBOX = Path("/bin/busybox")

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
users:x:100:app
app:x:1000:
nogroup:x:65534:
"""


def make_busybox_rootfs(root: Path) -> Path:
    """A minimal image: busybox and its applets in /bin, accounts in /etc, /tmp."""
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "tmp").mkdir()
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def mountinfo() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return sorted(f.read().splitlines())


def host_processes_matching(needle: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle.encode() in f.read():
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def run_script(
    runner: Runner, rootfs: Path, script: str, default_env: tuple[str, ...], **overrides: object
) -> tuple[int, str]:
    """Run a shell script in ``rootfs`` as root with ``runner``; return (status, output)."""
    output = io.BytesIO()
    fields: dict[str, object] = {
        "rootfs": rootfs,
        "argv": ("/bin/sh", "-c", script),
        "env": default_env,
        "cwd": "/",
        "uid": 0,
        "gid": 0,
        "groups": (),
        "stdout": output,
        "stderr": output,
    }
    fields.update(overrides)
    status = runner.run(RunSpec(**fields))  # type: ignore[arg-type]
    return status, output.getvalue().decode()
