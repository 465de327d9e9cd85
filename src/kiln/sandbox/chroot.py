"""The ``chroot`` isolation backend: RUN in a chroot plus its own mount namespace, as root.

Why: a lighter backend than ``namespaces`` (no pid, uts or ipc namespace, no pivot_root) that
still gives each step the image's filesystem as ``/``, its user and groups, Docker's capability
bound, its environment and working directory, the ``/proc``, ``/dev`` and ``/sys`` Docker gives
a RUN (mounted by the helper, ``_chroot_init``), and an end to every background process when the
step ends. What it cannot give is said once, through :attr:`ChrootRunner.limitations`.

It needs mount rights (CAP_SYS_ADMIN): a step must never run without ``/proc``, ``/dev/null``
or ``/sys``, and without mounts a chroot cannot provide them (issue 10.15: without CAP_MKNOD a
step's ``2>/dev/null`` silently created a file in the image). In a default Kubernetes pod (no
CAP_SYS_ADMIN) ``available`` says so, and ``auto`` builds in place instead (Kaniko's model).
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path

from kiln.sandbox._chroot_files import chroot_files
from kiln.sandbox._helper import checked_rootfs, has_capability, launch, root_problem
from kiln.sandbox._mountpoints import mount_points
from kiln.sandbox._output import routed_output
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox.spec import RunSpec
from kiln.sandbox.userns import current_mapping

log = logging.getLogger("kiln")

_CAP_SYS_CHROOT = 18
_CAP_SYS_ADMIN = 21

#: What the chroot backend cannot provide without more namespaces (logged once per build).
LIMITATIONS = (
    "chroot isolation: RUN steps share kiln's pid, ipc, uts and network namespaces (they see "
    "the host's processes and its hostname; --network none is not possible); "
    "/etc/resolv.conf and /etc/hosts are copies of the host's for the step's duration"
)


class ChrootRunner:
    """Runs each RUN step chrooted into its rootfs, as the step's user."""

    def __init__(self) -> None:
        self._warned = False
        self._lock = threading.Lock()

    @classmethod
    def available(cls) -> str | None:
        """``None`` if this backend works here, else the reason it does not (for ``auto``)."""
        problem = root_problem("chroot isolation", (_CAP_SYS_CHROOT, "CAP_SYS_CHROOT"))
        if problem is not None:
            return problem
        if not has_capability(_CAP_SYS_ADMIN):
            return (
                "chroot isolation cannot give RUN steps /proc, /sys, /dev/shm and /dev/pts "
                "without mount rights (CAP_SYS_ADMIN)"
            )
        mapping = current_mapping()
        if mapping is not None:
            # A fresh /proc needs a pid namespace of this user namespace's own (and, in a
            # container, a fully visible /proc); the chroot helper creates neither.
            return f"chroot isolation cannot mount /proc in a user namespace ({mapping})"
        return None

    limitations = LIMITATIONS

    def run(self, spec: RunSpec) -> int:
        """Run ``spec``; return its exit status (128+N if killed by signal N)."""
        if spec.network != "host":
            log.warning("chroot isolation cannot isolate the network; the step uses the host's")
        rootfs = checked_rootfs(spec.rootfs)
        with (
            mount_points(Path(rootfs), {}),
            chroot_files(Path(rootfs), socket.gethostname()) as missing,
        ):
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
                what = ", ".join(missing)
                log.warning("chroot isolation could not provide %s in RUN steps", what)


__all__ = ["LIMITATIONS", "ChrootRunner"]
