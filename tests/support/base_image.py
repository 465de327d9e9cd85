"""A busybox base image made from the host's `busybox-static`, with no network at all.

Why: tests must not depend on Docker Hub. umoci builds an OCI layout from a tiny rootfs (busybox
and its applet links, /etc/passwd and /etc/group with root, an `app` user and a `staff` group),
and skopeo pushes it to the test registry, so pulling it exercises the real registry path.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BUSYBOX = Path("/bin/busybox")

PASSWD = (
    "root:x:0:0:root:/root:/bin/sh\n"
    "app:x:1000:1000:app user:/home/app:/bin/sh\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
)
GROUP = "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n"


def make_rootfs(root: Path) -> Path:
    """Lay out a minimal busybox rootfs under root and return it."""
    for d in ("bin", "etc", "tmp", "root", "home/app"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = root / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


def make_oci_layout(workdir: Path, tag: str = "latest") -> Path:
    """An OCI layout at workdir/oci holding the busybox image under `tag`."""
    rootfs = make_rootfs(workdir / "rootfs")
    layout = workdir / "oci"
    image = f"{layout}:{tag}"

    def umoci(*args: str) -> None:
        subprocess.run(["umoci", *args], check=True, capture_output=True)

    umoci("init", "--layout", str(layout))
    umoci("new", "--image", image)
    umoci("insert", "--image", image, str(rootfs), "/")
    umoci(
        "config",
        "--image",
        image,
        "--config.env",
        "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "--config.cmd",
        "/bin/sh",
        "--architecture",
        "amd64",
        "--os",
        "linux",
    )
    return layout


def push_layout(layout: Path, tag: str, destination: str) -> None:
    """Push the layout's `tag` to a plain-HTTP registry reference with skopeo."""
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            f"docker://{destination}",
        ],
        check=True,
        capture_output=True,
    )
