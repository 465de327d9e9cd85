"""Cancellation: Interrupted reaches every thread working for the build, never a shielded one."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from kiln.builder.cancel import Cancellation, in_this_build
from kiln.errors import Interrupted


def _busy(until: threading.Event) -> None:
    """Python work (the exception arrives between instructions) until ``until`` is set."""
    while not until.is_set():
        time.sleep(0.001)


def test_cancel_interrupts_working_threads_and_their_pool_work() -> None:
    cancellation = Cancellation()
    never = threading.Event()
    # Not a Barrier: an asynchronous exception that lands inside a threading primitive's
    # clean-up can turn into "release unlocked lock"; a list append is one bytecode.
    started: list[str] = []
    outcomes: list[str] = []

    def worker() -> None:
        try:
            with cancellation.working():
                started.append("worker")  # the exception may arrive anywhere in the block
                _busy(never)
        except Interrupted:
            outcomes.append("worker interrupted")

    def pooled(_: int) -> None:
        try:
            started.append("pooled")
            _busy(never)
        except Interrupted:
            outcomes.append("pooled interrupted")

    def hands_out() -> None:
        try:
            with cancellation.working(), ThreadPoolExecutor(1) as pool:
                list(pool.map(in_this_build(pooled), [1]))
        except Interrupted:
            outcomes.append("caller interrupted")

    threads = [threading.Thread(target=worker), threading.Thread(target=hands_out)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert cancellation.cancel(Interrupted(signal.SIGTERM))
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    # The caller may be interrupted while it waits for its pool's thread, and then leaves before
    # that thread has recorded its own interruption: give it the time to.
    deadline = time.monotonic() + 60
    while len(outcomes) < 3 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert sorted(outcomes) == ["caller interrupted", "pooled interrupted", "worker interrupted"]
    assert not cancellation.cancel(Interrupted(signal.SIGINT))  # the first reason stays
    assert cancellation.reason is not None and cancellation.reason.signum == signal.SIGTERM


def test_a_shielded_thread_finishes_its_clean_up() -> None:
    cancellation = Cancellation()
    inside, done = threading.Event(), threading.Event()
    outcomes: list[str] = []

    def cleaner() -> None:
        with cancellation.working(), cancellation.shielded():
            inside.set()
            _busy(done)
            outcomes.append("clean-up finished")

    thread = threading.Thread(target=cleaner)
    thread.start()
    inside.wait()
    cancellation.cancel(Interrupted(signal.SIGTERM))
    done.set()
    thread.join(timeout=60)
    assert outcomes == ["clean-up finished"]


def test_working_after_cancel_raises_at_once() -> None:
    cancellation = Cancellation()
    cancellation.cancel(Interrupted(signal.SIGINT))
    assert cancellation.raises_here()
    with cancellation.shielded():
        assert not cancellation.raises_here()
    with pytest.raises(Interrupted), cancellation.working():
        pytest.fail("a cancelled build started new work")
