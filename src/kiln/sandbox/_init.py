"""The sandbox helper: ``helper()`` builds the process tree of one RUN.

Why a separate process: entering namespaces with ``unshare(2)`` from kiln's own (possibly
multi-threaded) process would be unsafe, and forking it would copy its state. The helper is
forked by the sandbox fork server (``_forkserver``, a small single-threaded interpreter);
``python -m kiln.sandbox._init`` still runs one directly. The tree is::

    kiln ── fork server ── helper (new mount/uts/ipc[/net] ns; outside the new pid ns)
                             └── init (pid 1 of the new pid ns: mounts, pivot_root, reaps orphans)
                                   └── command (chdir, ids, capabilities, execve)

The fork server itself forks init straight into a new pid namespace where it may
(``init_helper``: the same init, without the helper process in between).

When the command exits, init exits with its status, and the kernel kills every process left in
the pid namespace, so background children never outlive a RUN step (as in ``docker build``).
Both helper and init die with their parent (``PR_SET_PDEATHSIG``), and the fork server kills
its helpers when kiln goes away, so killing kiln kills the run.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from typing import NoReturn

from kiln.sandbox import _libc, _namespaces, _report
from kiln.sandbox._command import exec_command, restrict_capabilities
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import SetupFailure
from kiln.sandbox._rootfs import enter_rootfs

#: Exit status of a helper process that reported a set-up failure (Docker uses 125 likewise).
SETUP_FAILED = 125


def main(argv: list[str]) -> NoReturn:
    """``--plan-fd N --report-fd M`` runs a plan; ``--probe`` checks the backend can work."""
    if argv == ["--probe"]:
        probe()
    helper(*plan_fds(argv, "kiln.sandbox._init"))


def plan_fds(argv: list[str], module: str) -> tuple[int, int]:
    """The plan and report fds of a helper run as ``python -m module`` (the fork server passes
    them as fds 3 and 4 instead); a usage message and exit status 2 for anything else."""
    if len(argv) != 4 or argv[0] != "--plan-fd" or argv[2] != "--report-fd":
        os.write(2, f"usage: python -m {module} --plan-fd N --report-fd M\n".encode())
        os._exit(2)
    return int(argv[1]), int(argv[3])


def helper(plan_fd: int, report_fd: int) -> NoReturn:
    """Run the plan read from ``plan_fd`` (fds 0-2 are the step's); never returns."""
    os.set_inheritable(report_fd, False)  # the report pipe closes when the command execs
    try:
        _libc.set_parent_death_signal(signal.SIGKILL)
        # Ctrl-C reaches the command too; the helper just waits for it to decide.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        plan = SandboxPlan.from_json(read_all(plan_fd))
        _namespaces.enter(_namespaces.namespace_flags(plan.network), plan.hostname)
        pid = os.fork()
    except BaseException as exc:
        die(report_fd, exc)
    if pid == 0:
        as_child(report_fd, lambda: _init(plan, report_fd))
    os.close(report_fd)
    _, status = os.waitpid(pid, 0)
    os._exit(exit_status(status))


def prepare_init() -> BaseException | None:
    """What init does before it knows its plan; returns the failure to report once it can.

    Drops the capabilities a command never gets from the bounding set (the command inherits
    it; init keeps its own effective set for the mounts). The fork server has a spare init do
    this ahead of the step (see ``_forkserver``). Entering the mount namespace has to wait for
    the step: the namespace copies the mount table as it is then, and kiln mounts each step's
    rootfs just before the step.
    """
    try:
        restrict_capabilities()
    except BaseException as exc:
        return exc
    return None


def init_helper(
    plan_fd: int, report_fd: int, prepared: tuple[BaseException | None] | None = None
) -> NoReturn:
    """``helper`` for a process forked as pid 1 of a fresh pid namespace: it is init itself.

    The fork server forks namespaces steps this way (see ``_forkserver``), which spares each
    step one Python process (its fork and its exit) between the server and init.
    ``prepared``: the result of ``prepare_init`` if it ran already, as a 1-tuple.
    """
    os.set_inheritable(report_fd, False)  # the report pipe closes when the command execs
    try:
        failure = prepare_init() if prepared is None else prepared[0]
        if failure is not None:
            raise failure
        plan = SandboxPlan.from_json(read_all(plan_fd))
        flags = _namespaces.namespace_flags(plan.network) & ~_libc.CLONE_NEWPID
        _namespaces.enter(flags, plan.hostname)
    except BaseException as exc:
        die(report_fd, exc)
    as_child(report_fd, lambda: _init(plan, report_fd, bounded=True))


def _init(plan: SandboxPlan, report_fd: int, *, bounded: bool = False) -> NoReturn:
    _libc.set_parent_death_signal(signal.SIGKILL)
    # As pid 1, signals left at SIG_DFL are ignored: only the command decides when the run ends.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    enter_rootfs(plan)
    command = os.fork()
    if command == 0:
        as_child(report_fd, lambda: exec_command(plan, report_fd, bounded=bounded))
    os.close(report_fd)
    while True:  # reap orphans re-parented to us until the command itself is done
        pid, status = os.waitpid(-1, 0)
        if pid == command:
            os._exit(exit_status(status))


def as_child(report_fd: int, body: Callable[[], object]) -> NoReturn:
    """Run ``body`` in a forked child; never let an exception unwind into the parent's code."""
    try:
        body()
    except BaseException as exc:
        die(report_fd, exc)
    os._exit(SETUP_FAILED)  # body returned without exec'ing: cannot happen, but never fall through


def die(report_fd: int, exc: BaseException) -> NoReturn:
    if isinstance(exc, SetupFailure):
        failure = exc
    elif isinstance(exc, OSError):
        failure = _report.from_os_error(f"sandbox set-up ({exc.filename or 'unknown step'})", exc)
    else:
        failure = SetupFailure(f"sandbox helper failed: {type(exc).__name__}: {exc}")
    try:
        _report.send(report_fd, failure)
    finally:
        os._exit(SETUP_FAILED)


def exit_status(wait_status: int) -> int:
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.waitstatus_to_exitcode(wait_status)


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def probe() -> NoReturn:
    """Do the privileged steps once, in throwaway namespaces; print why they fail, if they do."""
    flags = _namespaces.namespace_flags("none")
    try:
        _namespaces.enter(flags, "kiln-probe")
        pid = os.fork()
        if pid == 0:
            try:
                # The private mount namespace makes this invisible to the host.
                _libc.mount("proc", "/proc", "proc", _libc.MS_NOSUID | _libc.MS_NODEV)
            except OSError as exc:
                os.write(1, f"mount proc: {os.strerror(exc.errno or 0)}\n".encode())
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        os._exit(exit_status(status))
    except SetupFailure as failure:
        os.write(1, f"{failure.message}\n".encode())
        os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
