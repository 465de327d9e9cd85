"""The ``namespaces`` isolation backend: RUN in fresh Linux namespaces, as root on the host.

Why this shape: kiln's own process only prepares and cleans up (mount-point stubs, output
routing) and launches a helper interpreter (``kiln.sandbox._init``) that enters the namespaces,
so kiln never changes its own namespaces, mounts or credentials. A rootless variant would reuse
all of this and add a user namespace with id maps in the helper.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

from kiln.errors import SandboxError
from kiln.sandbox._etc_files import etc_files
from kiln.sandbox._mountpoints import mount_points
from kiln.sandbox._namespaces import PRIVILEGE_HINT
from kiln.sandbox._output import RoutedOutput, routed_output
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import receive
from kiln.sandbox.spec import RunSpec

_CAP_SYS_ADMIN = 21
_HELPER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROBE_TIMEOUT = 30


class NamespacesRunner:
    """Runs each RUN step in new mount, pid, uts and ipc namespaces (plus network for "none")."""

    @classmethod
    def available(cls) -> str | None:
        """``None`` if this backend works here, else the reason it does not (for ``auto``)."""
        return _availability()

    def run(self, spec: RunSpec) -> int:
        """Run ``spec``; return its exit status (128+N if killed by signal N)."""
        rootfs = _checked_rootfs(spec.rootfs)
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
                return _launch(plan, output)


def _launch(plan: SandboxPlan, output: RoutedOutput) -> int:
    plan_read, plan_write = os.pipe()
    report_read, report_write = os.pipe()
    try:
        helper = subprocess.Popen(
            [
                *_helper_command(),
                "--plan-fd",
                str(plan_read),
                "--report-fd",
                str(report_write),
            ],
            stdin=subprocess.DEVNULL,
            stdout=output.stdout,
            stderr=output.stderr,
            pass_fds=(plan_read, report_write),
            env=_helper_env(),
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


def _send_plan(fd: int, plan: SandboxPlan) -> None:
    data = memoryview(plan.to_json())
    try:
        while data:
            data = data[os.write(fd, data) :]
    except BrokenPipeError:
        pass  # the helper died early; its report (or its status) says why
    finally:
        os.close(fd)


def _helper_command() -> list[str]:
    # -P: do not put the working directory on sys.path; -s: no user site-packages.
    return [sys.executable, "-P", "-s", "-m", "kiln.sandbox._init"]


def _helper_env() -> dict[str, str]:
    """The helper imports the same kiln as this process, whatever way kiln was installed."""
    source_root = str(Path(__file__).resolve().parents[2])
    return {"PATH": _HELPER_PATH, "PYTHONPATH": source_root, "LC_ALL": "C.UTF-8"}


def _checked_rootfs(rootfs: Path) -> str:
    real = os.path.realpath(rootfs)
    if not os.path.isdir(real):
        raise SandboxError(f"rootfs {rootfs} is not a directory")
    if real == "/":
        raise SandboxError("refusing to use the host's / as a RUN rootfs")
    return real


@functools.cache
def _availability() -> str | None:
    if sys.platform != "linux":
        return f"namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"namespaces backend needs root (running as uid {os.geteuid()})"
    if not _has_capability(_CAP_SYS_ADMIN):
        return "namespaces backend needs CAP_SYS_ADMIN"
    try:
        probe = subprocess.run(
            [*_helper_command(), "--probe"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=_helper_env(),
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


def _has_capability(cap: int) -> bool:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> cap & 1)
    except OSError:
        pass
    return False


__all__ = ["PRIVILEGE_HINT", "NamespacesRunner"]
