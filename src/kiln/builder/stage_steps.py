"""One stage's steps in order: dispatch each instruction, apply its effect, record its layer.

Why apart from the builder: the builder decides what a stage starts from and what it may read;
this is the loop every stage then runs, the same for all of them: pure dispatch gives the new
state and an effect, the executor applies the effect (a layer, or none), and the history and
layer are recorded in the state. Errors are located at the instruction they came from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from kiln.builder.cache import StageCache
from kiln.builder.cancel import Cancellation
from kiln.builder.dispatch import DispatchContext, Dispatched, dispatch
from kiln.builder.lazy_stage import LazyStage
from kiln.builder.resources import resource_errors
from kiln.builder.state import StageState
from kiln.dockerfile import Instruction
from kiln.errors import DockerfileError, KilnError, StepLocation
from kiln.image import HistoryEntry, Layer

log = logging.getLogger("kiln")

#: Instructions whose effects read or write the rootfs (everything else only changes config).
_FILESYSTEM_STEPS = frozenset({"RUN", "COPY", "ADD", "WORKDIR"})


@dataclass(frozen=True)
class StageSteps:
    """What one stage's steps run with.

    ``image_stage``: the stage is the image's (no other stage copies from it) and the
    filesystems let its last file step leave files uncreated (``Filesystems.defers_files``).
    ``offer``: called with the stage's layers after every step (they may go up early).
    ``cache``: the stage's layer cache (None: every step runs).
    ``stage``: the stage's filesystem and executor, made when a step first needs the files.
    """

    label: str
    filename: str
    stage: LazyStage
    context: DispatchContext
    cancellation: Cancellation
    work_root: Path  # where a full disk is reported
    image_stage: bool
    offer: Callable[[tuple[Layer, ...]], None]
    cache: StageCache | None = None

    def run(self, state: StageState, instructions: tuple[Instruction, ...]) -> StageState:
        """Run ``instructions`` from ``state``; the stage's final state."""
        total = len(instructions)
        for number, instruction in enumerate(instructions, start=1):
            step = f"[stage {self.label}] STEP {number}/{total}: {instruction.original}"
            log.info("%s", step)
            self.cancellation.activity = step
            result = dispatch(state, instruction, self.context)
            layer = None
            if result.effect:
                last = self.image_stage and not any(
                    later.keyword in _FILESYSTEM_STEPS for later in instructions[number:]
                )  # nothing reads this rootfs after the step
                layer = self._file_step(number, instruction, result, last)
            state = _record(result.state, layer, result.history)
            self.offer(state.layers)
        return state

    def _file_step(
        self, number: int, instruction: Instruction, result: Dispatched, last: bool
    ) -> Layer | None:
        """Run a filesystem step, or take its cached layer (applied to the files only when a
        later step reads them, see ``LazyStage``); record it in the cache."""
        assert result.effect is not None
        what = f"the files of step {number} ({instruction.keyword}) of stage {self.label}"
        lookup = None
        if self.cache is not None:
            lookup = self.cache.look_up(number, instruction.keyword, result.state, result.effect)
        before = result.state.layers
        try:
            with resource_errors(what, self.work_root):
                if lookup is not None and lookup.layer is not None:
                    layer: Layer | None = lookup.layer
                    if not last:  # nothing reads the image stage's files after its last step
                        self.stage.hit((*before, lookup.layer))
                else:
                    executor = self.stage.executor(before)
                    layer = executor.apply(result.state, result.effect, last=last)
                    self.stage.ran(before if layer is None else (*before, layer))
        except KilnError as exc:  # say which instruction failed, as BuildKit does
            locate(exc, self.filename, instruction)
            raise
        if self.cache is not None and lookup is not None:
            text = instruction.source or instruction.original
            self.cache.record(lookup, number, text, layer, result.history, result.state)
        return layer


def locate(error: KilnError, filename: str, instruction: Instruction) -> None:
    """Record on ``error`` the instruction it came from: its first line and its text as written.

    A DockerfileError names FILE:LINE in its message already and is left alone.
    """
    if not isinstance(error, DockerfileError):
        text = instruction.source or instruction.original
        error.at_step(StepLocation(filename, instruction.line, text))


def _record(state: StageState, layer: Layer | None, history: HistoryEntry | None) -> StageState:
    """Add the step's history entry, and its layer if it made one."""
    if history is None:
        return state
    if layer is None:
        entry = replace(history, empty_layer=True)
        return state.with_config(state.config.with_history(entry))
    entry = replace(history, empty_layer=False)
    config = state.config.with_layer(layer.diff_id, entry)
    return replace(state, config=config, layers=(*state.layers, layer))
