"""Route a RUN command's stdout and stderr to whatever the caller asked for.

Why: the build streams RUN output into its log, which may be a terminal (inherit), a raw fd, a
real file, or an in-memory object with no fd at all. Child processes can only write to fds, so
objects without one get a pipe and a pump thread; the same object for both streams shares one
pipe so the interleaving of stdout and stderr is kept.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kiln.sandbox.spec import BinarySink, Output


class _Pump:
    """Copies one pipe into one file object on a thread (mutable: owns fds and a thread)."""

    def __init__(self, target: BinarySink, read_fd: int, write_fd: int) -> None:
        self.target = target
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.error: list[BaseException] = []
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._copy, name="kiln-run-output", daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        try:
            while chunk := os.read(self.read_fd, 65536):
                self.target.write(chunk)
            self.target.flush()
        except BaseException as exc:  # re-raised in the caller's thread by finish()
            self.error.append(exc)
            while os.read(self.read_fd, 65536):  # keep draining so the command never blocks
                pass

    def close_write_end(self) -> None:
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def finish(self) -> None:
        self.close_write_end()
        if self.thread is not None:
            self.thread.join()
        os.close(self.read_fd)
        if self.error:
            raise self.error[0]


@dataclass(frozen=True)
class RoutedOutput:
    """The fds to give the child (``None`` = inherit) and the pumps feeding file objects."""

    stdout: int | None
    stderr: int | None
    pumps: list[_Pump]

    def child_started(self) -> None:
        """Drop our copies of the pipes' write ends, so EOF arrives when the command is gone."""
        for pump in self.pumps:
            pump.close_write_end()


@contextmanager
def routed_output(stdout: Output, stderr: Output) -> Iterator[RoutedOutput]:
    """Resolve ``stdout``/``stderr`` to fds for the duration of one run."""
    pumps: dict[int, _Pump] = {}
    try:
        out = _resolve(stdout, pumps)
        err = _resolve(stderr, pumps)
        routed = RoutedOutput(out, err, list(pumps.values()))
        yield routed
    finally:
        errors = []
        for pump in pumps.values():
            try:
                pump.finish()
            except BaseException as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def _resolve(target: Output, pumps: dict[int, _Pump]) -> int | None:
    if target is None or isinstance(target, int):
        return target
    fd = _real_fileno(target)
    if fd is not None:
        target.flush()  # whatever kiln already wrote must come before the command's output
        return fd
    pump = pumps.get(id(target))
    if pump is None:
        read_fd, write_fd = os.pipe()
        pump = _Pump(target, read_fd, write_fd)
        pump.start()
        pumps[id(target)] = pump
    return pump.write_fd


def _real_fileno(target: BinarySink) -> int | None:
    fileno = getattr(target, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
    except (OSError, io.UnsupportedOperation):
        return None
    return fd if isinstance(fd, int) else None
