"""Start a sandbox helper interpreter, hand it a plan, and collect its verdict.

Why shared: every backend that runs a command in a prepared rootfs (``namespaces``, ``chroot``)
does it the same way: a fresh, single-threaded interpreter (``python -m MODULE``) gets the plan
as JSON on a pipe and reports set-up failures on another, so kiln's own (possibly
multi-threaded) process never forks, changes namespaces, root directory or credentials.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kiln.errors import SandboxError
from kiln.sandbox._output import RoutedOutput
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import receive

HELPER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def helper_command(module: str) -> list[str]:
    """``python -P -s -m MODULE``: no working directory and no user site-packages on sys.path."""
    return [sys.executable, "-P", "-s", "-m", module]


def helper_env() -> dict[str, str]:
    """The helper imports the same kiln as this process, whatever way kiln was installed."""
    source_root = str(Path(__file__).resolve().parents[2])
    return {"PATH": HELPER_PATH, "PYTHONPATH": source_root, "LC_ALL": "C.UTF-8"}


def launch(module: str, plan: SandboxPlan, output: RoutedOutput) -> int:
    """Run ``plan`` through ``python -m module``; return the command's exit status."""
    plan_read, plan_write = os.pipe()
    report_read, report_write = os.pipe()
    try:
        helper = subprocess.Popen(
            [
                *helper_command(module),
                "--plan-fd",
                str(plan_read),
                "--report-fd",
                str(report_write),
            ],
            stdin=subprocess.DEVNULL,
            stdout=output.stdout,
            stderr=output.stderr,
            pass_fds=(plan_read, report_write),
            env=helper_env(),
            cwd="/",
        )
    except OSError as exc:
        for fd in (plan_write, report_read):
            os.close(fd)
        raise SandboxError(f"cannot start the sandbox helper: {exc}") from exc
    finally:
        os.close(plan_read)
        os.close(report_write)
        output.child_started()
    try:
        _send_plan(plan_write, plan)
        with os.fdopen(report_read, "rb", buffering=0) as report:
            failure = receive(report.fileno())
        status = helper.wait()
    except BaseException:
        helper.kill()  # its death signal takes the whole sandbox down with it
        helper.wait()
        raise
    if failure is not None:
        raise SandboxError(failure.message, hint=failure.hint)
    # Popen reports death by signal N as -N; a shell (and Docker) says 128+N.
    return 128 - status if status < 0 else status


def checked_rootfs(rootfs: Path) -> str:
    """The real path of ``rootfs``; refuses anything but a directory other than ``/``."""
    real = os.path.realpath(rootfs)
    if not os.path.isdir(real):
        raise SandboxError(f"rootfs {rootfs} is not a directory")
    if real == "/":
        raise SandboxError("refusing to use the host's / as a RUN rootfs")
    return real


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


def _send_plan(fd: int, plan: SandboxPlan) -> None:
    data = memoryview(plan.to_json())
    try:
        while data:
            data = data[os.write(fd, data) :]
    except BrokenPipeError:
        pass  # the helper died early; its report (or its status) says why
    finally:
        os.close(fd)
