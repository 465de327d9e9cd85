"""Parallel stages: dependency order kept, independent stages overlap, first error wins."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import pytest

from kiln.builder.stage_scheduler import run_stages
from kiln.dockerfile import Stage, parse

DOCKERFILE = """\
FROM scratch AS a
FROM scratch AS b
FROM scratch AS c
COPY --from=a /x /x
FROM c
COPY --from=b /y /y
"""


def stages() -> tuple[Stage, ...]:
    return parse(DOCKERFILE).stages


def deps(stage: Stage) -> Sequence[Stage]:
    table = {0: [], 1: [], 2: [0], 3: [2, 1]}
    return [stages()[i] for i in table[stage.index]]


def test_independent_stages_overlap_and_dependants_wait() -> None:
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    both_started = threading.Barrier(2, timeout=5)

    def build(stage: Stage) -> int:
        with lock:
            events.append(("start", stage.index))
        if stage.index in (0, 1):
            both_started.wait()  # raises BrokenBarrierError unless a and b really overlap
        time.sleep(0.01)
        with lock:
            events.append(("end", stage.index))
        return stage.index * 10

    results = run_stages(stages(), deps, build, jobs=2)
    assert results == {0: 0, 1: 10, 2: 20, 3: 30}
    position = {event: n for n, event in enumerate(events)}
    assert position[("end", 0)] < position[("start", 2)]
    assert position[("end", 2)] < position[("start", 3)]
    assert position[("end", 1)] < position[("start", 3)]


def test_jobs_one_builds_in_order() -> None:
    order: list[int] = []
    run_stages(stages(), deps, lambda s: order.append(s.index), jobs=1)
    assert order == [0, 1, 2, 3]


def test_first_failure_is_raised_and_dependants_never_start() -> None:
    started: list[int] = []

    def build(stage: Stage) -> None:
        started.append(stage.index)
        if stage.index == 0:
            raise RuntimeError("stage a failed")

    with pytest.raises(RuntimeError, match="stage a failed"):
        run_stages(stages(), deps, build, jobs=2)
    assert 2 not in started and 3 not in started
