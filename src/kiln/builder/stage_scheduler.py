"""Build independent stages at the same time (``--jobs``), each as soon as its inputs are done.

Why: in a multi-stage Dockerfile the stages that do not read from each other (a Go build, a
frontend build, a downloader...) spend most of their time in RUN, on one core each. Starting
every stage whose dependencies (``FROM stage``, ``COPY --from=stage``) have finished, up to
``jobs`` at a time, turns their sum into their maximum. With ``jobs=1`` stages run in Dockerfile
order, exactly as before. The first failure stops new stages from starting; stages already
running finish, and that first error is raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from kiln.dockerfile import Stage

Result = TypeVar("Result")


def default_jobs() -> int:
    """The CPU count this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


def run_stages(
    stages: Sequence[Stage],
    dependencies: Callable[[Stage], Sequence[Stage]],
    build: Callable[[Stage], Result],
    jobs: int,
) -> dict[int, Result]:
    """Build ``stages`` (in dependency order already) and return results by stage index."""
    wanted = {stage.index for stage in stages}
    needs = {s.index: {d.index for d in dependencies(s)} & wanted for s in stages}
    results: dict[int, Result] = {}
    if jobs <= 1:
        for stage in stages:
            results[stage.index] = build(stage)
        return results
    waiting = list(stages)
    running: dict[Future[Result], Stage] = {}
    error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="stage") as pool:
        while waiting or running:
            if error is None:
                for stage in [s for s in waiting if needs[s.index] <= results.keys()]:
                    if len(running) >= jobs:
                        break
                    waiting.remove(stage)
                    running[pool.submit(build, stage)] = stage
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                stage = running.pop(future)
                exc = future.exception()
                if exc is None:
                    results[stage.index] = future.result()
                elif error is None:
                    error = exc
    if error is not None:
        raise error
    if waiting:
        raise AssertionError(f"stages never became ready: {[s.index for s in waiting]}")
    return results
