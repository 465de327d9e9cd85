"""Stop a running build from outside (SIGTERM or SIGINT today; an API ``cancel()`` later).

Why one object: an interrupted build must end exactly as a failed one does — the running RUN
step's processes gone at once, mounts undone, the work dir and temporary files removed, no
manifest put — and the code that does that on failure already exists: ``finally`` blocks and
context managers. So :meth:`Cancellation.cancel` only

1. raises :class:`kiln.errors.Interrupted` in every thread working for the build (the caller's,
   each stage's, each blob transfer's: they register with :meth:`Cancellation.working`, and
   threads they start join through :func:`in_this_build`), at that thread's next Python
   instruction (``PyThreadState_SetAsyncExc``; a thread in a blocking system call sees it when
   the call returns), and
2. has the sandbox kill the RUN steps that run now, which ends the status reads their threads
   are blocked in.

The caller's own thread (the signal handler runs there) raises ``Interrupted`` itself when
:meth:`Cancellation.raises_here` says so. Each thread then unwinds through the same clean-up as
on any error. A thread inside :meth:`Cancellation.shielded` (the build's final clean-up: unmount,
remove the work dir) is never interrupted, so a stop cannot cut that clean-up short.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import ParamSpec, TypeVar

from kiln.errors import Interrupted
from kiln.sandbox import stop_running_steps

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")

_registry_lock = threading.RLock()  # re-entrant: a signal handler may run while a thread holds it
_by_thread: dict[int, Cancellation] = {}  # thread ident -> the build it works for


def _enter(depths: dict[int, int], ident: int) -> None:
    """Thread ``ident`` enters one more (nested) block counted in ``depths``; hold the lock."""
    depths[ident] = depths.get(ident, 0) + 1


def _leave(depths: dict[int, int], ident: int) -> bool:
    """Thread ``ident`` leaves a block counted in ``depths``; True if it was the outermost."""
    depth = depths.pop(ident, 1) - 1
    if depth:
        depths[ident] = depth
    return not depth


class Cancellation:
    """Whether (and why) one build was stopped, and the threads to stop (mutable by nature)."""

    def __init__(self) -> None:
        self.reason: Interrupted | None = None
        #: What the build is doing, for the message that says what was interrupted.
        self.activity = "starting the build"
        #: Destinations whose manifest was put: those tags moved before the interruption.
        self.pushed: list[str] = []
        self._threads: dict[int, int] = {}  # thread ident -> nesting depth of working()
        self._shielded: dict[int, int] = {}  # thread ident -> nesting depth of shielded()

    @property
    def cancelled(self) -> bool:
        return self.reason is not None

    @contextmanager
    def working(self) -> Iterator[None]:
        """The calling thread works for this build until the block ends (it may nest)."""
        ident = threading.get_ident()
        with _registry_lock:
            _enter(self._threads, ident)
            _by_thread[ident] = self
        try:
            if self.reason is not None:
                raise Interrupted(self.reason.signum)
            yield
        finally:
            with _registry_lock:
                if _leave(self._threads, ident):
                    _by_thread.pop(ident, None)

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Clean-up that must run to its end: the calling thread is not interrupted in it."""
        ident = threading.get_ident()
        with _registry_lock:
            _enter(self._shielded, ident)
        try:
            yield
        finally:
            with _registry_lock:
                _leave(self._shielded, ident)

    @contextmanager
    def exits_shielded(self, resource: AbstractContextManager[T]) -> Iterator[T]:
        """``with resource``, whose exit (its clean-up) runs :meth:`shielded`."""
        entered = resource.__enter__()
        try:
            yield entered
        except BaseException as exc:
            with self.shielded():
                if not resource.__exit__(type(exc), exc, exc.__traceback__):
                    raise
        else:
            with self.shielded():
                resource.__exit__(None, None, None)

    def raises_here(self) -> bool:
        """Whether the calling thread may be interrupted now: it is in no :meth:`shielded`
        clean-up (a signal handler asks; it then raises ``Interrupted`` itself)."""
        with _registry_lock:
            return threading.get_ident() not in self._shielded

    def cancel(self, reason: Interrupted) -> bool:
        """Stop the build; False if it was stopped already (then nothing more happens).

        Safe to call from a signal handler: it takes only a re-entrant lock and sends the fork
        server one message per running step.
        """
        with _registry_lock:  # held while raising: a thread still registered gets it in working()
            if self.reason is not None:
                return False
            self.reason = reason
            me = threading.get_ident()
            for ident in self._threads:
                if ident != me and ident not in self._shielded:
                    _raise_in(ident)
        stop_running_steps()  # after the raises: see the module docstring
        return True


def in_this_build(function: Callable[P, R]) -> Callable[P, R]:
    """``function``, run as work of the calling thread's build (for pools it hands work to)."""
    with _registry_lock:
        cancellation = _by_thread.get(threading.get_ident())
    if cancellation is None:
        return function

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with cancellation.working():
            return function(*args, **kwargs)

    return run


def _raise_in(ident: int) -> None:
    # Only when a build is stopped: every command loads this module, and `ctypes` costs the
    # ones that never mount (login, push, parse) 1.5 ms (`-X importtime`; a build has it anyway).
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(Interrupted))
