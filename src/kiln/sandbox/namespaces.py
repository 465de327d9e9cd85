"""The ``namespaces`` isolation backend: RUN in fresh Linux namespaces, as root.

Why this shape: kiln's own process only prepares and cleans up (mount-point stubs, output
routing) and launches a helper interpreter (``kiln.sandbox._init``) that enters the namespaces,
so kiln never changes its own namespaces, mounts or credentials. Root may be the host's or the
root of the user namespace a rootless kiln re-executed itself in (``kiln.sandbox.userns``).
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

from kiln.sandbox._etc_files import etc_files
from kiln.sandbox._helper import checked_rootfs, has_capability, helper_command, helper_env, launch
from kiln.sandbox._mountpoints import mount_points
from kiln.sandbox._namespaces import PRIVILEGE_HINT
from kiln.sandbox._output import routed_output
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox.spec import RunSpec

_CAP_SYS_ADMIN = 21
_HELPER_MODULE = "kiln.sandbox._init"
_PROBE_TIMEOUT = 30


class NamespacesRunner:
    """Runs each RUN step in new mount, pid, uts and ipc namespaces (plus network for "none")."""

    @classmethod
    def available(cls) -> str | None:
        """``None`` if this backend works here, else the reason it does not (for ``auto``)."""
        return _availability()

    def run(self, spec: RunSpec) -> int:
        """Run ``spec``; return its exit status (128+N if killed by signal N)."""
        rootfs = checked_rootfs(spec.rootfs)
        with etc_files(spec.hostname) as files, mount_points(Path(rootfs), files) as file_binds:
            plan = SandboxPlan(
                rootfs=rootfs,
                argv=spec.argv,
                env=spec.env,
                cwd=spec.cwd,
                uid=spec.uid,
                gid=spec.gid,
                groups=spec.groups,
                hostname=spec.hostname,
                network=spec.network,
                file_binds=file_binds,
            )
            with routed_output(spec.stdout, spec.stderr) as output:
                return launch(_HELPER_MODULE, plan, output)


@functools.cache
def _availability() -> str | None:
    if sys.platform != "linux":
        return f"namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"namespaces backend needs root (running as uid {os.geteuid()})"
    if not has_capability(_CAP_SYS_ADMIN):
        return "namespaces backend needs CAP_SYS_ADMIN"
    try:
        probe = subprocess.run(
            [*helper_command(_HELPER_MODULE), "--probe"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=helper_env(),
            cwd="/",
            timeout=_PROBE_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"namespaces probe failed: {exc}"
    if probe.returncode != 0:
        detail = (probe.stdout or probe.stderr).decode(errors="replace").strip()
        return f"cannot create namespaces: {detail or f'probe exited {probe.returncode}'}"
    return None


__all__ = ["PRIVILEGE_HINT", "NamespacesRunner"]
