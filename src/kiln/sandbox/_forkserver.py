"""The sandbox fork server: one helper interpreter per kiln process, forked once per RUN step.

Why: starting a fresh Python interpreter for every RUN step (``python -m kiln.sandbox._init``)
costs tens of milliseconds before the step does anything. This small single-threaded
interpreter is started once (by ``kiln.sandbox._servers``) with the helper modules imported;
each request makes it fork a child that *is* the helper of one step, exactly as the fresh
interpreter was (same fds 0-4, same code from ``_init``/``_chroot_init`` on). The tree is::

    kiln ── fork server ── helper (one per RUN) ── init / command ...

kiln itself still never forks, changes namespaces, root or credentials. The server owns its
children: it reaps them (through pidfds, so it never blocks on one), reports each exit status on
the step's own status pipe, and SIGKILLs a step on request. When kiln goes away, for whatever
reason, the kernel closes its end of the control socket; the server then kills every helper still
running and exits (each helper also has ``PR_SET_PDEATHSIG`` on the server).

Requests are SOCK_SEQPACKET messages: a small JSON header plus fds (``SCM_RIGHTS``):

- ``{"op": "run", "id": N, "helper": "namespaces"|"chroot"}`` with fds
  ``[stdout, stderr, status, plan, report]``: fork a helper for one step.
- ``{"op": "probe", "id": N}`` with fds ``[stdout, stderr, status]``: the namespaces probe.
- ``{"op": "kill", "id": N}``: SIGKILL that step's helper (its status is still reported).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import sys
from typing import NoReturn

from kiln.sandbox import _chroot_init, _init, _libc

#: Exit status of a forked child that could not become a helper (as ``_init.SETUP_FAILED``).
_CHILD_FAILED = 125
_MAX_FDS = 8
_MAX_MESSAGE = 4096


class _Server:
    """The server's state: the control socket and its running children (mutable by nature)."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ)
        self.me = os.getpid()
        self.children: dict[int, tuple[int, int, int]] = {}  # id -> (pid, pidfd, status fd)

    def serve(self) -> NoReturn:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.control:
                    self._receive()
                else:
                    self._reap(int(key.data))

    def _receive(self) -> None:
        try:
            data, fds, _, _ = socket.recv_fds(self.control, _MAX_MESSAGE, _MAX_FDS)
        except OSError:
            data, fds = b"", []
        if not data:
            self._shutdown()
        try:
            request = json.loads(data)
            self._handle(request, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _handle(self, request: dict[str, object], fds: list[int]) -> None:
        ident = int(str(request["id"]))
        op = request["op"]
        if op == "kill":
            if ident in self.children:
                os.kill(self.children[ident][0], signal.SIGKILL)  # not reaped yet: pid is ours
            return
        stdout, stderr, status_fd, *extra = fds
        try:
            pid = os.fork()
        except OSError as exc:
            _write_status(status_fd, f"error fork: {os.strerror(exc.errno or 0)}")
            return
        if pid == 0:
            self._child(str(op), str(request.get("helper", "")), [stdout, stderr, *extra])
        pidfd = os.pidfd_open(pid)
        self.children[ident] = (pid, pidfd, os.dup(status_fd))
        self.selector.register(pidfd, selectors.EVENT_READ, ident)

    def _child(self, op: str, helper: str, fds: list[int]) -> NoReturn:
        try:
            _libc.set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != self.me:
                os._exit(_CHILD_FAILED)  # the server died before the line above took effect
            _arrange_fds([0, *fds])  # 0 stays /dev/null; then stdout, stderr, plan, report
            if op == "probe":
                _init.probe()
            elif helper == "chroot":
                _chroot_init.helper(3, 4)
            else:
                _init.helper(3, 4)
        finally:
            os._exit(_CHILD_FAILED)

    def _reap(self, ident: int) -> None:
        pid, pidfd, status_fd = self.children.pop(ident)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, wait_status = os.waitpid(pid, 0)
        _write_status(status_fd, str(_init.exit_status(wait_status)))
        os.close(status_fd)

    def _shutdown(self) -> NoReturn:
        for pid, _, _ in self.children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid, _, _ in self.children.values():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)


def _write_status(fd: int, line: str) -> None:
    with contextlib.suppress(OSError):  # the client may have given up waiting
        os.write(fd, f"{line}\n".encode())


def _arrange_fds(fds: list[int]) -> None:
    """Make ``fds[i]`` fd number ``i`` and close every other fd (a fresh process's view)."""
    floor = max(*fds, len(fds)) + 1
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in fds]
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(len(fds), os.sysconf("SC_OPEN_MAX"))


def main(argv: list[str]) -> NoReturn:
    """``--control-fd N``: serve requests on that socket until kiln closes it."""
    if len(argv) != 2 or argv[0] != "--control-fd":
        os.write(2, b"usage: python -m kiln.sandbox._forkserver --control-fd N\n")
        os._exit(2)
    # Ctrl-C is for the step's command and for kiln, which then asks for the step to be killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _Server(socket.socket(fileno=int(argv[1]))).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
