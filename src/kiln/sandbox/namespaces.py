"""The ``namespaces`` isolation backend: RUN in fresh Linux namespaces, as root.

Why this shape: kiln's own process only prepares and cleans up (mount-point stubs, output
routing) and has a helper process (``kiln.sandbox._init``, forked by the sandbox fork server)
enter the namespaces, so kiln never changes its own namespaces, mounts or credentials. Root may
be the host's or the root of the user namespace a rootless kiln re-executed itself in
(``kiln.sandbox.userns``).
"""

from __future__ import annotations

import functools
from pathlib import Path

from kiln.errors import SandboxError
from kiln.sandbox._etc_files import etc_files
from kiln.sandbox._forkclient import probe, start_probe
from kiln.sandbox._helper import checked_rootfs, launch, root_problem
from kiln.sandbox._mountpoints import mount_points
from kiln.sandbox._namespaces import PRIVILEGE_HINT
from kiln.sandbox._output import routed_output
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox.spec import RunSpec

_CAP_SYS_ADMIN = 21


class NamespacesRunner:
    """Runs each RUN step in new mount, pid, uts and ipc namespaces (plus network for "none")."""

    @classmethod
    def available(cls) -> str | None:
        """``None`` if this backend works here, else the reason it does not (for ``auto``)."""
        return _availability()

    @classmethod
    def warm_up(cls) -> None:
        """Start the fork server and the probe :meth:`available` needs, without waiting.

        For callers that know RUN steps are likely (the CLI, before its own imports): both then
        happen on another core while kiln starts. Does nothing where the cheap checks fail.
        """
        if _cheap_problem() is None and _availability.cache_info().currsize == 0:
            start_probe()

    def run(self, spec: RunSpec) -> int:
        """Run ``spec``; return its exit status (128+N if killed by signal N)."""
        rootfs = checked_rootfs(spec.rootfs)
        with etc_files(spec.hostname) as files, mount_points(Path(rootfs), files) as file_binds:
            plan = SandboxPlan.for_spec(
                spec,
                rootfs=rootfs,
                hostname=spec.hostname,
                network=spec.network,
                file_binds=file_binds,
            )
            with routed_output(spec.stdout, spec.stderr) as output:
                return launch("namespaces", plan, output)


def _cheap_problem() -> str | None:
    return root_problem("namespaces backend", (_CAP_SYS_ADMIN, "CAP_SYS_ADMIN"))


@functools.cache
def _availability() -> str | None:
    problem = _cheap_problem()
    if problem is not None:
        return problem
    try:
        # Run by the fork server, which this starts early: RUN steps find it warm.
        status, output = probe()
    except SandboxError as exc:
        return f"namespaces probe failed: {exc}"
    if status != 0:
        detail = output.decode(errors="replace").strip()
        return f"cannot create namespaces: {detail or f'probe exited {status}'}"
    return None


__all__ = ["PRIVILEGE_HINT", "NamespacesRunner"]
