"""The ``chroot`` isolation backend: RUN in a chroot, for root with CAP_SYS_CHROOT and no more.

Why: a default Kubernetes pod runs kiln as root with the default capability set — no
CAP_SYS_ADMIN, no user namespaces, no mounts — so the ``namespaces`` backend cannot work there.
``chroot`` plus the switch to the RUN user still gives each step the image's filesystem as
``/``, its user and groups, Docker's capability bound, its environment and working directory,
and an end to every background process when the step ends. What it cannot give is said once,
through :attr:`ChrootRunner.limitations` and the first run's warning about device nodes.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from pathlib import Path

from kiln.sandbox._chroot_files import chroot_files
from kiln.sandbox._helper import checked_rootfs, has_capability, launch
from kiln.sandbox._output import routed_output
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox.spec import RunSpec

log = logging.getLogger("kiln")

_CAP_SYS_CHROOT = 18

#: What the chroot backend cannot provide without mounts or namespaces (logged once per build).
LIMITATIONS = (
    "chroot isolation cannot provide /proc, /sys, /dev/pts or /dev/shm (they need mounts); "
    "RUN steps share kiln's pid, ipc, uts and network namespaces (they see the container's "
    "processes and its hostname; --network none is not possible); "
    "/etc/resolv.conf and /etc/hosts are copies of the host's for the step's duration; "
    "device nodes a step makes or the image ships open unless the container runtime's device "
    "cgroup forbids it (Docker, Podman and Kubernetes do; nothing does outside a container)"
)


class ChrootRunner:
    """Runs each RUN step chrooted into its rootfs, as the step's user."""

    def __init__(self) -> None:
        self._warned = False
        self._lock = threading.Lock()

    @classmethod
    def available(cls) -> str | None:
        """``None`` if this backend works here, else the reason it does not (for ``auto``)."""
        if sys.platform != "linux":
            return f"chroot isolation needs Linux (this is {sys.platform})"
        if os.geteuid() != 0:
            return f"chroot isolation needs root (running as uid {os.geteuid()})"
        if not has_capability(_CAP_SYS_CHROOT):
            return "chroot isolation needs CAP_SYS_CHROOT"
        return None

    limitations = LIMITATIONS

    def run(self, spec: RunSpec) -> int:
        """Run ``spec``; return its exit status (128+N if killed by signal N)."""
        if spec.network != "host":
            log.warning("chroot isolation cannot isolate the network; the step uses the host's")
        rootfs = checked_rootfs(spec.rootfs)
        with chroot_files(Path(rootfs), socket.gethostname()) as missing:
            self._warn_missing(missing)
            plan = SandboxPlan.for_spec(
                spec, rootfs=rootfs, hostname=socket.gethostname(), network="host"
            )
            with routed_output(spec.stdout, spec.stderr) as output:
                return launch("chroot", plan, output)

    def _warn_missing(self, missing: tuple[str, ...]) -> None:
        with self._lock:
            if missing and not self._warned:
                self._warned = True
                log.warning(
                    "chroot isolation could not provide %s in RUN steps "
                    "(creating device nodes needs CAP_MKNOD)",
                    ", ".join(missing),
                )


__all__ = ["LIMITATIONS", "ChrootRunner"]
