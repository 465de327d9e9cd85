"""The chroot helper: ``helper()`` runs one RUN step in a chroot.

Why a helper like the namespaces backend: ``chroot`` and the switch to the RUN user must happen
in a process of their own, and forking kiln's (possibly multi-threaded) interpreter is unsafe.
The sandbox fork server forks the helper (``python -m kiln.sandbox._chroot_init`` still runs one
directly). The tree is::

    kiln ── fork server ── helper (child subreaper, outside the chroot)
                             └── command (new session and mount namespace: /proc, /dev, /sys
                                          mounted into the rootfs; chroot, chdir, ids,
                                          capabilities, execve)

The mounts are what ``docker build`` gives a RUN step (``/proc``, a ``/dev`` with the usual
nodes, ``/dev/shm`` and ``/dev/pts``, a read-only ``/sys``); they are made in a mount namespace
of the command's own, so they vanish with its last process. The chroot backend is only offered
where kiln may mount (see ``ChrootRunner.available``); a step never runs without them.

Without a pid namespace nothing makes the kernel kill a step's background children, so the
helper does it: orphans are re-parented to it (``PR_SET_CHILD_SUBREAPER``), and when the command
exits it kills the command's process group and then every process still below it, until none
is left. Only then does the step end, so no daemon outlives it or holds its output open.
A SIGTERM to the helper (how the fork server stops a step when kiln is interrupted) kills the
command's process group at once; the same clean-up then follows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from typing import NoReturn

from kiln.sandbox import _libc, _namespaces, _rootfs
from kiln.sandbox._command import exec_command
from kiln.sandbox._init import as_child, die, exit_status, plan_fds, read_all
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import from_os_error


def main(argv: list[str]) -> NoReturn:
    """``--plan-fd N --report-fd M`` runs a plan."""
    helper(*plan_fds(argv, "kiln.sandbox._chroot_init"))


def helper(plan_fd: int, report_fd: int) -> NoReturn:
    """Run the plan read from ``plan_fd`` (fds 0-2 are the step's); never returns."""
    os.set_inheritable(report_fd, False)  # the report pipe closes when the command execs
    try:
        _libc.set_parent_death_signal(signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the command's group
        _libc.prctl(_libc.PR_SET_CHILD_SUBREAPER, 1)
        plan = SandboxPlan.from_json(read_all(plan_fd))
        command = os.fork()
    except BaseException as exc:
        die(report_fd, exc)
    if command == 0:
        as_child(report_fd, lambda: _enter_and_exec(plan, report_fd))
    signal.signal(signal.SIGTERM, lambda _signum, _frame: _kill_group(command))
    os.close(report_fd)
    status = _wait_for(command)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up below runs anyway
    _kill_leftovers(command)
    os._exit(status)


def _enter_and_exec(plan: SandboxPlan, report_fd: int) -> NoReturn:
    _libc.set_parent_death_signal(signal.SIGKILL)
    os.setsid()  # its own process group, so the helper can kill the step's processes at once
    if plan.rootfs == "/":
        exec_command(plan, report_fd)  # the inplace backend: the container's / is the rootfs
    _namespaces.unshare(_libc.CLONE_NEWNS)
    _namespaces.make_mounts_private()
    _rootfs.mount_kernel_filesystems(plan.rootfs)
    try:
        os.chroot(plan.rootfs)
    except OSError as exc:
        raise from_os_error(
            f"chroot into {plan.rootfs}", exc, "needs root with CAP_SYS_CHROOT"
        ) from exc
    os.chdir("/")
    exec_command(plan, report_fd)


def _wait_for(command: int) -> int:
    while True:  # reap orphans re-parented to us until the command itself is done
        pid, status = os.waitpid(-1, 0)
        if pid == command:
            return exit_status(status)


def _kill_group(command: int) -> None:
    """SIGTERM's handler: the command is not reaped yet (the handler runs in ``_wait_for``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(command, signal.SIGKILL)  # also before its setsid() made the group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(command, signal.SIGKILL)


def _kill_leftovers(command: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(command, signal.SIGKILL)  # not kill(command): that pid is reaped already
    while True:
        for pid in _children():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)  # a killed child's own children now become ours: go round again
        except ChildProcessError:
            return


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # "pid (comm) state ppid ...": comm may contain spaces and parentheses.
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            found.append(int(entry))
    return found


if __name__ == "__main__":
    main(sys.argv[1:])
