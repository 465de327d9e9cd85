"""kiln's side of the sandbox fork server: start it once, hand it steps, collect their statuses.

Why: see ``kiln.sandbox._forkserver``; a RUN step then costs a ``fork`` of a small, warm
interpreter instead of a new one. The server is shared by the whole kiln process (every stage
thread, every build in a long-lived library process), started on first use and started again if
it died; it exits when kiln closes the control socket, at exit or when kiln itself dies.
Each step has its own status pipe, so concurrent steps never wait on each other's answers.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import select
import socket
import subprocess
import threading
from dataclasses import dataclass

from kiln.errors import SandboxError
from kiln.sandbox._interpreter import helper_command, helper_env
from kiln.sandbox._plan import SandboxPlan
from kiln.sandbox._report import receive

_MODULE = "kiln.sandbox._forkserver"


class _ServerGone(Exception):
    """The server died (or was never reachable); a fresh one may be started.

    ``mid_step``: it died while a step ran, so retrying could run the step twice.
    """

    def __init__(self, message: str, *, mid_step: bool = False) -> None:
        super().__init__(message)
        self.mid_step = mid_step


class ForkServer:
    """One running fork server and the control socket to it (mutable: owns a process)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [*helper_command(_MODULE), "--control-fd", str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=helper_env(),
                cwd="/",
            )
        except OSError as exc:
            ours.close()
            raise SandboxError(f"cannot start the sandbox helper: {exc}") from exc
        finally:
            theirs.close()
        self.control = ours
        self.owner = os.getpid()
        self._ids = itertools.count(1)
        # Re-entrant: ``kill_running`` may be called by a signal handler in a thread that is
        # sending a request itself.
        self._lock = threading.RLock()
        self._running: set[int] = set()  # ids of the steps whose status is not read yet

    def alive(self) -> bool:
        return self.owner == os.getpid() and self.process.poll() is None

    def run(self, helper: str, plan: SandboxPlan, stdout: int, stderr: int) -> int:
        """Run one step's helper (``"namespaces"`` or ``"chroot"``); return its exit status."""
        plan_read, plan_write = os.pipe()
        report_read, report_write = os.pipe()
        status_read, status_write = os.pipe()
        try:
            ident = self._send(
                {"op": "run", "helper": helper},
                [stdout, stderr, status_write, plan_read, report_write],
            )
        except BaseException:
            for fd in (plan_write, report_read, status_read):
                os.close(fd)
            raise
        finally:
            for fd in (plan_read, report_write, status_write):
                os.close(fd)
        self._running.add(ident)
        try:
            _send_plan(plan_write, plan)
            failure = receive(report_read)
            status = _read_status(status_read)
        except BaseException:
            self.kill(ident)  # its death takes the whole sandbox down with it
            with contextlib.suppress(_ServerGone):
                _read_status(status_read)
            raise
        finally:
            self._running.discard(ident)
            os.close(report_read)
            os.close(status_read)
        if failure is not None:
            raise SandboxError(failure.message, hint=failure.hint, remedies=failure.remedies)
        return status

    def start_probe(self) -> PendingProbe:
        """Fork the namespaces probe; its result is collected with ``PendingProbe.result``."""
        out_read, out_write = os.pipe()
        status_read, status_write = os.pipe()
        try:
            self._send({"op": "probe"}, [out_write, out_write, status_write])
        except BaseException:
            os.close(out_read)
            os.close(status_read)
            raise
        finally:
            os.close(out_write)
            os.close(status_write)
        return PendingProbe(self, out_read, status_read)

    def kill(self, ident: int) -> None:
        with contextlib.suppress(_ServerGone):
            self._send({"op": "kill", "id": ident}, [], ident)

    def kill_running(self) -> None:
        """Kill every step running now; their ``run`` calls return (or raise) at once."""
        for ident in list(self._running):
            self.kill(ident)

    def close(self) -> None:
        """Close the control socket (the server kills what still runs and exits); reap it."""
        self.control.close()
        if self.owner == os.getpid():
            if not _exits_within(self.process, 10.0):
                self.process.kill()
            self.process.wait()

    def _send(self, request: dict[str, object], fds: list[int], ident: int | None = None) -> int:
        with self._lock:
            ident = next(self._ids) if ident is None else ident
            data = json.dumps({**request, "id": ident}).encode()
            try:
                socket.send_fds(self.control, [data], fds)
            except OSError as exc:
                raise _ServerGone(str(exc)) from exc
        return ident


@dataclass(frozen=True)
class PendingProbe:
    """A probe the server is running: read its output, then its status."""

    server: ForkServer
    out_read: int
    status_read: int

    def result(self) -> tuple[int, bytes]:
        """Wait for the probe; return its exit status and what it printed."""
        try:
            with os.fdopen(self.out_read, "rb", closefd=False) as out:
                output = out.read()
            return _read_status(self.status_read), output
        finally:
            os.close(self.out_read)
            os.close(self.status_read)


def _exits_within(process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Whether ``process`` ends within ``timeout`` seconds (it is not reaped here).

    Waits on a pidfd: ``Popen.wait(timeout)`` polls with sleeps, which would add up to
    milliseconds to every kiln run's exit for nothing.
    """
    if process.poll() is not None:
        return True
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:  # a kernel without pidfds (before 5.3): poll as Popen does
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        return bool(ready)
    finally:
        os.close(pidfd)


def _read_status(fd: int) -> int:
    """The server's line for one step: an exit status, or ``error MESSAGE``."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 256)
        if not chunk:
            raise _ServerGone("the sandbox fork server exited during the step", mid_step=True)
        data += chunk
    line = data.decode().strip()
    if line.startswith("error "):
        raise SandboxError(f"cannot start the sandbox helper: {line[6:]}")
    return int(line)


def _send_plan(fd: int, plan: SandboxPlan) -> None:
    data = memoryview(plan.to_json())
    try:
        while data:
            data = data[os.write(fd, data) :]
    except BrokenPipeError:
        pass  # the helper died early; its report (or its status) says why
    finally:
        os.close(fd)


_server: ForkServer | None = None
_pending: PendingProbe | None = None  # started by start_probe(), collected by probe()
_server_lock = threading.Lock()


def _current() -> ForkServer:
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            if _server is not None and _server.owner == os.getpid():
                _server.close()
            _server = ForkServer()
        return _server


def _forget(server: ForkServer) -> None:
    global _server
    with _server_lock:
        if _server is server:
            _server = None
    server.close()


def run_step(helper: str, plan: SandboxPlan, stdout: int, stderr: int) -> int:
    """Run one step through the shared fork server (started, or restarted, as needed)."""
    for attempt in (1, 2):
        server = _current()
        try:
            return server.run(helper, plan, stdout, stderr)
        except _ServerGone as exc:
            _forget(server)
            if attempt == 2 or exc.mid_step:
                raise SandboxError(f"the sandbox helper failed: {exc}") from exc
    raise AssertionError("unreachable")


def start_probe() -> None:
    """Start the fork server and the namespaces probe now, without waiting for either.

    The CLI calls this before its own (slow) imports, so both run on another core meanwhile.
    """
    global _pending
    with _server_lock:
        if _pending is not None and _pending.server.alive():
            return  # one is under way already (the CLI starts it before parsing its flags)
    try:
        server = _current()
        pending = server.start_probe()
    except (_ServerGone, SandboxError):
        return  # probe() tries again, and reports what fails
    spare: PendingProbe | None = pending
    with _server_lock:
        if _pending is None:
            _pending, spare = pending, None
    if spare is not None:
        with contextlib.suppress(_ServerGone):
            spare.result()  # a second warm-up: nobody wants this one


def probe() -> tuple[int, bytes]:
    """The namespaces probe, run by the shared fork server (which it starts, ready for steps)."""
    global _pending
    with _server_lock:
        pending, _pending = _pending, None
    server = _current()
    try:
        if pending is None or pending.server is not server:
            if pending is not None:
                with contextlib.suppress(_ServerGone):
                    pending.result()  # started by a server that has since died
            pending = server.start_probe()
        return pending.result()
    except _ServerGone as exc:
        _forget(server)
        raise SandboxError(f"the sandbox helper failed: {exc}") from exc


def stop_running_steps() -> None:
    """Kill every RUN step this process runs now, whatever thread waits for it.

    For stopping a build (``kiln.builder.cancel``): each step's whole process tree ends, and the
    thread waiting for its status gets it at once. Takes no lock a signal handler could wait
    for forever (the server's own is re-entrant).
    """
    server = _server
    if server is not None and server.owner == os.getpid():
        server.kill_running()


@atexit.register
def _stop() -> None:
    global _server
    with _server_lock:
        server, _server = _server, None
    if server is not None and server.owner == os.getpid():
        server.close()


__all__ = ["ForkServer", "PendingProbe", "probe", "run_step", "start_probe", "stop_running_steps"]
