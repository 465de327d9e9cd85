"""The ``inplace`` isolation backend's runner: RUN directly in the container's own ``/``.

Why: in Kaniko's model the container *is* the build root (the base image was unpacked over
``/``), so a step needs no chroot or namespaces — only the step's user, groups, environment,
working directory, Docker's capability bound, and the end of its background processes, which
the chroot helper already provides (it skips ``chroot`` for ``/``). Deciding that ``/`` may be
used this way (a container, kiln's own directory and mounts left alone) is the builder's job,
see ``kiln.builder.inplace_root``.
"""

from __future__ import annotations

import os
import sys

from kiln.errors import SandboxError
from kiln.sandbox._helper import launch
from kiln.sandbox._output import routed_output
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox.spec import RunSpec


class InplaceRunner:
    """Runs each RUN step in ``/`` itself, as the step's user."""

    @classmethod
    def available(cls) -> str | None:
        """``None`` if this backend works here, else the reason it does not."""
        if sys.platform != "linux":
            return f"inplace isolation needs Linux (this is {sys.platform})"
        return None

    def run(self, spec: RunSpec) -> int:
        """Run ``spec`` (whose rootfs must be ``/``); return its exit status."""
        if os.path.realpath(spec.rootfs) != "/":
            raise SandboxError(f"the inplace runner only runs in /, not in {spec.rootfs}")
        plan = SandboxPlan.for_spec(spec, rootfs="/", hostname=spec.hostname, network="host")
        with routed_output(spec.stdout, spec.stderr) as output:
            return launch("chroot", plan, output)


__all__ = ["InplaceRunner"]
