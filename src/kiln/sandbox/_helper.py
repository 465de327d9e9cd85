"""Hand a plan to a sandbox helper and collect its verdict; checks every backend shares.

Why shared: every backend that runs a command in a prepared rootfs (``namespaces``, ``chroot``)
does it the same way: a single-threaded helper process (forked for the step by the sandbox fork
server, see ``_forkserver``) gets the plan as JSON on a pipe and reports set-up failures on
another, so kiln's own (possibly multi-threaded) process never forks, changes namespaces, root
directory or credentials.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from kiln.errors import SandboxError
from kiln.sandbox._forkclient import run_step
from kiln.sandbox._output import RoutedOutput
from kiln.sandbox._plan import SandboxPlan


def launch(helper: str, plan: SandboxPlan, output: RoutedOutput) -> int:
    """Run ``plan`` through a ``helper`` (``"namespaces"`` or ``"chroot"``) forked by the
    sandbox fork server; return the command's exit status."""
    stdout = 1 if output.stdout is None else output.stdout  # None: kiln's own stdout/stderr
    stderr = 2 if output.stderr is None else output.stderr
    try:
        return run_step(helper, plan, stdout, stderr)
    finally:
        output.child_started()


def checked_rootfs(rootfs: Path) -> str:
    """The real path of ``rootfs``; refuses anything but a directory other than ``/``."""
    real = os.path.realpath(rootfs)
    if not os.path.isdir(real):
        raise SandboxError(f"rootfs {rootfs} is not a directory")
    if real == "/":
        raise SandboxError("refusing to use the host's / as a RUN rootfs")
    return real


def root_problem(backend: str, *capabilities: tuple[int, str]) -> str | None:
    """Why ``backend`` (as named in messages) cannot run here for want of Linux, root or one of
    ``capabilities`` (number, name), or None: the first checks every mounting backend makes."""
    if sys.platform != "linux":
        return f"{backend} needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"{backend} needs root (running as uid {os.geteuid()})"
    for number, name in capabilities:
        if not has_capability(number):
            return f"{backend} needs {name}"
    return None


def has_capability(cap: int) -> bool:
    """Whether this process has capability number ``cap`` in its effective set."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except OSError:
        pass
    return False
