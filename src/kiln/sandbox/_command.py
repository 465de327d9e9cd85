"""Turn the sandbox's last process into the user's command, the way runc does.

Why: after the mounts, the remaining steps are about *who* runs *what* and with which
expectations: working directory, user and groups, a Docker-like capability set, default signal
dispositions, only fds 0-2, and the ``PATH`` lookup done inside the container with the
command's own ``PATH`` (never kiln's). Exit statuses and messages for a missing executable
follow Docker's (127 not found, 126 not executable).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from typing import NoReturn

from kiln.sandbox import _libc
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import SetupFailure

#: Docker's default capability set for containers (by number, see capability.h).
DEFAULT_CAPABILITIES = frozenset(
    {
        0,  # CHOWN
        1,  # DAC_OVERRIDE
        3,  # FOWNER
        4,  # FSETID
        5,  # KILL
        6,  # SETGID
        7,  # SETUID
        8,  # SETPCAP
        10,  # NET_BIND_SERVICE
        13,  # NET_RAW
        18,  # SYS_CHROOT
        27,  # MKNOD
        29,  # AUDIT_WRITE
        31,  # SETFCAP
    }
)
_LAST_POSSIBLE_CAP = 63
NOT_FOUND = 127
NOT_EXECUTABLE = 126


def exec_command(plan: SandboxPlan, keep_fd: int, *, bounded: bool = False) -> NoReturn:
    """Become ``plan.argv``. Raises ``SetupFailure`` for sandbox problems (bad cwd, ids).

    ``keep_fd`` (the close-on-exec report pipe) survives until ``execve``. ``bounded``: the
    parent already called ``restrict_capabilities`` (the bounding set is inherited).
    """
    _reset_signals()
    os.umask(0o022)
    try:
        os.chdir(plan.cwd)
    except OSError as exc:
        reason = os.strerror(exc.errno or 0).lower()
        raise SetupFailure(f'chdir to cwd ("{plan.cwd}") failed: {reason}') from exc
    if not bounded:
        restrict_capabilities()
    try:
        _set_groups(plan)
        os.setgid(plan.gid)
        os.setuid(plan.uid)
    except OSError as exc:
        message = f"switch to uid {plan.uid} gid {plan.gid} groups {list(plan.groups)}"
        raise SetupFailure(f"{message}: {os.strerror(exc.errno or 0)}") from exc
    _close_fds_except(keep_fd)
    env = dict(entry.split("=", 1) for entry in plan.env)
    name = plan.argv[0]
    path = find_executable(name, env.get("PATH"))
    if path is None:
        _fail(f'exec: "{name}": executable file not found in $PATH', NOT_FOUND)
    try:
        os.execve(path, list(plan.argv), env)
    except OSError as exc:
        status = NOT_FOUND if exc.errno == errno.ENOENT else NOT_EXECUTABLE
        _fail(f'exec: "{path}": {os.strerror(exc.errno or 0).lower()}', status)


def _set_groups(plan: SandboxPlan) -> None:
    try:
        os.setgroups(list(plan.groups))
    except PermissionError:
        # A single-id user namespace denies setgroups(2). Nothing is lost when no other
        # supplementary group was asked for; otherwise say how to get real groups.
        if _setgroups_denied() and not set(plan.groups) - {plan.gid}:
            return
        if _setgroups_denied():
            raise SetupFailure(
                f"cannot set supplementary groups {list(plan.groups)}: this user namespace "
                "maps a single id",
                hint="give the user a range in /etc/subgid (and install newgidmap, package uidmap)",
            ) from None
        raise


def _setgroups_denied() -> bool:
    try:
        # Bytes: after pivot_root the interpreter can no longer import codecs.
        with open("/proc/self/setgroups", "rb") as setgroups:
            return setgroups.read().strip() == b"deny"
    except OSError:
        return False


def find_executable(name: str, path_value: str | None) -> str | None:
    """Go's ``exec.LookPath`` semantics: names with a slash are used as they are."""
    if "/" in name:
        return name
    for directory in (path_value or "").split(":") if path_value else ():
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _reset_signals() -> None:
    # Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: `yes | head`
    # would never end. Give the command the defaults any shell-started process has.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def restrict_capabilities() -> None:
    """Drop everything outside Docker's set from the bounding set, so root in RUN cannot mount,
    load modules or reconfigure the host kernel; ``execve`` then applies the bound. Only
    ``execve`` looks at the bounding set (a process keeps its effective capabilities), so a
    parent may call this for the command before its own mounts (the sandbox init does).

    The bounding set is read once from ``/proc/self/status`` (one read instead of a ``prctl``
    per capability); where that fails, each capability is asked for with ``PR_CAPBSET_READ``.
    """
    bounding = _bounding_set()
    for cap in range(_LAST_POSSIBLE_CAP + 1):
        if cap in DEFAULT_CAPABILITIES:
            continue
        try:
            if bounding is not None:
                if not bounding >> cap & 1:
                    continue  # already gone (e.g. a pod without it), or past the last one
            elif not _libc.prctl(_libc.PR_CAPBSET_READ, cap):
                continue  # already gone (e.g. a pod without it): nothing to drop
            _libc.prctl(_libc.PR_CAPBSET_DROP, cap)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                break  # past the kernel's last capability
            raise SetupFailure(f"drop capability {cap}: {os.strerror(exc.errno or 0)}") from exc
    with contextlib.suppress(OSError):  # kernels before 4.3 have no ambient set to clear
        _libc.prctl(_libc.PR_CAP_AMBIENT, _libc.PR_CAP_AMBIENT_CLEAR_ALL)


def _bounding_set() -> int | None:
    """The capability bounding set as a bit mask (``CapBnd:``), or None if it cannot be read."""
    try:
        # Bytes: after pivot_root the interpreter can no longer import codecs.
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"CapBnd:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _close_fds_except(keep_fd: int) -> None:
    os.closerange(3, keep_fd)
    os.closerange(keep_fd + 1, os.sysconf("SC_OPEN_MAX"))


def _fail(message: str, status: int) -> NoReturn:
    os.write(2, f"kiln: unable to start container process: {message}\n".encode())
    os._exit(status)
