"""The sandbox fork server: one helper interpreter per kiln process, forked once per RUN step.

Why: starting a fresh Python interpreter for every RUN step (``python -m kiln.sandbox._init``)
costs tens of milliseconds before the step does anything. This small single-threaded
interpreter is started by ``kiln.sandbox._forkclient`` on first use (and again if it died),
with the helper modules imported; each request makes it fork a child that *is* the helper of
one step, exactly as the fresh interpreter was (same fds 0-4, same code from
``_init``/``_chroot_init`` on). The tree is::

    kiln ── fork server ── helper (one per RUN) ── init / command ...
                       └── init (a namespaces step where the server may enter pid namespaces)

For a namespaces step the server forks init itself into a new pid namespace where the kernel
lets it (``unshare(CLONE_NEWPID)`` before the fork, ``setns`` back to its own right after), so
the step has one Python process fewer to fork and to tear down; elsewhere (a rootless kiln, or
no privilege) it forks the helper, which makes the pid namespace itself or says what is missing.

kiln itself still never forks, changes namespaces, root or credentials. The server owns its
children: it reaps them (through pidfds, so it never blocks on one), reports each exit status on
the step's own status pipe, and kills a step on request. When kiln goes away, for whatever
reason, the kernel closes its end of the control socket; the server then kills every child
still running (the spare init too) and exits (each child also has ``PR_SET_PDEATHSIG`` on the
server).

Requests are SOCK_SEQPACKET messages: a small JSON header plus fds (``SCM_RIGHTS``):

- ``{"op": "run", "id": N, "helper": "namespaces"|"chroot"}`` with fds
  ``[stdout, stderr, status, plan, report]``: fork a helper for one step (a namespaces
  step: its init, or hand the fds to the spare init).
- ``{"op": "probe", "id": N}`` with fds ``[stdout, stderr, status]``: the namespaces probe.
- ``{"op": "kill", "id": N}``: end that step's process tree (its status is still reported):
  SIGKILL for a namespaces helper or init (the pid namespace dies with it), SIGTERM for a
  chroot helper, which then kills everything below it (``_chroot_init``); a SIGKILL would
  orphan the step's background processes, which have nothing else to end them.

Spare init: once the namespaces probe is under way and whenever a child (a step or the probe)
has been reaped, the server forks the next step's init ahead (pid 1 of a new pid namespace, set
up as far as it can be without a plan: ``_init.prepare_init``) and keeps it waiting on a
socket; a namespaces step's request hands it the step's fds, so the step waits for none of
that. (The other namespaces cannot be entered ahead: a new mount namespace copies the mount
table as it is then, before kiln has mounted the step's rootfs.)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
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
        self.server_pidfd = os.pidfd_open(self.me)  # readable once the server is gone
        self.pid_namespace = _own_pid_namespace()
        self.children: dict[int, tuple[int, int, int]] = {}  # id -> (pid, pidfd, status fd)
        self.kill_signals: dict[int, int] = {}  # id -> the signal that ends that step
        self.spare: tuple[int, int, socket.socket] | None = None  # (pid, pidfd, its socket)

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
            if ident in self.children:  # not reaped yet: the pid is still ours
                os.kill(self.children[ident][0], self.kill_signals.get(ident, signal.SIGKILL))
            return
        stdout, stderr, status_fd, *extra = fds
        helper = str(request.get("helper", ""))
        namespaces_run = op == "run" and helper == "namespaces"
        spare = self._hand_to_spare([stdout, stderr, *extra]) if namespaces_run else None
        if spare is not None:
            pid, pidfd = spare
        else:
            as_init = namespaces_run and self._unshare_pid_namespace()
            try:
                pid = os.fork()
            except OSError as exc:
                _write_status(status_fd, f"error fork: {os.strerror(exc.errno or 0)}")
                return
            finally:
                if as_init and os.getpid() == self.me:
                    self._restore_pid_namespace()
            if pid == 0:
                self._child(str(op), helper, [stdout, stderr, *extra], as_init=as_init)
            pidfd = os.pidfd_open(pid)
        self.children[ident] = (pid, pidfd, os.dup(status_fd))
        if helper == "chroot":
            self.kill_signals[ident] = signal.SIGTERM
        self.selector.register(pidfd, selectors.EVENT_READ, ident)
        if op == "probe":
            self._fork_spare()  # namespaces steps are likely to follow

    def _fork_spare(self) -> None:
        """Fork the next namespaces step's init now, before its request (see ``_spare``)."""
        if self.spare is not None or self.pid_namespace is None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if not self._unshare_pid_namespace():
            ours.close()
            theirs.close()
            return
        try:
            pid = os.fork()
        except OSError:
            ours.close()
            theirs.close()
            return  # the step forks its own init, and says what fails
        finally:
            if os.getpid() == self.me:
                self._restore_pid_namespace()
        if pid == 0:
            self._spare(theirs)
        theirs.close()
        self.spare = (pid, os.pidfd_open(pid), ours)

    def _spare(self, sock: socket.socket) -> NoReturn:
        """A spare init: pid 1 of its own pid namespace, set up as far as it can be without a
        plan (``_init.prepare_init``), waiting for a step's fds on ``sock``."""
        try:
            _libc.set_parent_death_signal(signal.SIGKILL)
            if not self._alive(as_init=True):
                os._exit(_CHILD_FAILED)
            keep = sock.fileno()  # and 0-2; nothing of the server's (its control socket...)
            os.closerange(3, keep)
            os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
            prepared = _init.prepare_init()
            data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, _MAX_FDS)
            if not data:
                os._exit(0)  # the server is done with it
            sock.send(b"k")  # taken: from here on, this process is the step's init
            _arrange_fds([0, *fds])  # as _child: stdout, stderr, plan, report
            _init.init_helper(3, 4, prepared=(prepared,))
        finally:
            os._exit(_CHILD_FAILED)

    def _hand_to_spare(self, fds: list[int]) -> tuple[int, int] | None:
        """Give a step's fds to the spare init; its (pid, pidfd), or None without one."""
        spare, self.spare = self.spare, None
        if spare is None:
            return None
        pid, pidfd, sock = spare
        try:
            # Wait for its answer: a spare killed from outside may not have closed its socket
            # yet, so a successful send alone does not mean it will run the step.
            socket.send_fds(sock, [b"run"], fds)
            taken = sock.recv(1) == b"k"
        except OSError:
            taken = False
        finally:
            sock.close()
        if not taken:  # it died: reap it, and fork an init for the step as without a spare
            os.close(pidfd)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            return None
        return pid, pidfd

    def _unshare_pid_namespace(self) -> bool:
        """Make the next child pid 1 of a new pid namespace; False where that is not allowed.

        A namespaces step then needs no helper process outside its pid namespace: the child is
        init itself (``_init.init_helper``). Only the server's *children* change namespace;
        ``_restore_pid_namespace`` points them back at the server's own right after the fork.
        """
        if self.pid_namespace is None:
            return False
        try:
            _libc.unshare(_libc.CLONE_NEWPID)
        except OSError:
            os.close(self.pid_namespace)  # no privilege for it: the helper reports the error
            self.pid_namespace = None
            return False
        return True

    def _restore_pid_namespace(self) -> None:
        assert self.pid_namespace is not None
        _libc.setns(self.pid_namespace, _libc.CLONE_NEWPID)  # cannot fail: our own namespace

    def _child(self, op: str, helper: str, fds: list[int], *, as_init: bool) -> NoReturn:
        try:
            _libc.set_parent_death_signal(signal.SIGKILL)
            if not self._alive(as_init=as_init):
                os._exit(_CHILD_FAILED)  # the server died before the line above took effect
            _arrange_fds([0, *fds])  # 0 stays /dev/null; then stdout, stderr, plan, report
            if op == "probe":
                _init.probe()
            elif helper == "chroot":
                _chroot_init.helper(3, 4)
            elif as_init:
                _init.init_helper(3, 4)
            else:
                _init.helper(3, 4)
        finally:
            os._exit(_CHILD_FAILED)

    def _alive(self, *, as_init: bool) -> bool:
        """In a child: whether the server still runs (so the parent death signal will come)."""
        if not as_init:
            return os.getppid() == self.me
        # Init's parent is outside its pid namespace (getppid() says 0): ask the server's pidfd.
        readable, _, _ = select.select([self.server_pidfd], [], [], 0)
        return not readable

    def _reap(self, ident: int) -> None:
        pid, pidfd, status_fd = self.children.pop(ident)
        self.kill_signals.pop(ident, None)
        self.selector.unregister(pidfd)
        os.close(pidfd)
        _, wait_status = os.waitpid(pid, 0)
        _write_status(status_fd, str(_init.exit_status(wait_status)))
        os.close(status_fd)
        # The next step's init, now: forked while a step starts, it would compete for the CPUs
        # with that step's own wake-ups (half a millisecond a step on two cores).
        self._fork_spare()

    def _shutdown(self) -> NoReturn:
        pids = [pid for pid, _, _ in self.children.values()]
        if self.spare is not None:
            pids.append(self.spare[0])
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        os._exit(0)


def _own_pid_namespace() -> int | None:
    """An fd of this process's pid namespace, if it may ``setns`` back into it, else None.

    Kept open: after forking each init into a new pid namespace the server returns to its own.
    Joining it needs ``CAP_SYS_ADMIN`` over its owner, which a rootless kiln (root only in its
    own user namespace) lacks for the host's pid namespace: its steps go through the helper.
    """
    try:
        fd = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        _libc.setns(fd, _libc.CLONE_NEWPID)  # a no-op that tells whether the real one works
    except OSError:
        os.close(fd)
        return None
    return fd


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
