"""Choosing the snapshotter (``--snapshotter``) and giving each stage its root filesystem.

Why here and not in the builder: the choice (overlay where the kernel lets kiln mount, else the
walk snapshotter) and the bookkeeping around it (pulled layers unpacked once into the layer
store, layers built by one stage reused as lower directories by the next, every mount taken
down when the build ends, also on failure) are one concern the build loop should not carry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from kiln.builder.background import in_background
from kiln.builder.isolation import select_runner
from kiln.builder.stage_scheduler import default_jobs
from kiln.builder.workspace import Workspace
from kiln.closeable import Closeable
from kiln.errors import BuildError, Remedy, UsageError
from kiln.fs import (
    LayerStore,
    OverlayStage,
    StageFilesystem,
    WalkStage,
    apply_layer,
    chain_id,
    overlay_problem,
)
from kiln.image import Layer
from kiln.sandbox import Runner

log = logging.getLogger("kiln")

SNAPSHOTTERS = ("auto", "overlay", "walk")


def select_snapshotter(requested: str, workspace: Workspace) -> str:
    """``"overlay"`` or ``"walk"`` for ``--snapshotter requested``; says which ``auto`` chose."""
    if requested not in SNAPSHOTTERS:
        raise UsageError(
            f"unknown snapshotter {requested!r}; choose one of {', '.join(SNAPSHOTTERS)}"
        )
    if requested == "walk":
        return "walk"
    problem = overlay_problem(workspace.scratch)
    if problem is None:
        log.info("Snapshotter: overlay (each step's diff is its overlay upper directory)")
        return "overlay"
    if requested == "overlay":
        raise BuildError(
            f"the overlay snapshotter cannot run here: {problem}",
            hint="use {0} (or {1}) where overlay mounts are not allowed",
            remedies=[Remedy("snapshotter", "walk"), Remedy("snapshotter", "auto")],
        )
    log.info("Snapshotter: walk (overlay mounts are not possible here: %s)", problem)
    return "walk"


class StageFilesystems(Closeable):
    """Makes and finally unmounts every stage's filesystem for one build."""

    def __init__(self, requested: str, workspace: Workspace) -> None:
        self.requested = requested
        self.workspace = workspace
        self.layer_store = LayerStore(workspace.store.root / "unpacked")
        self.built: dict[str, Path] = {}  # diff_id -> upper dir of a layer built this build
        self._kind: str | None = None
        self._made: list[StageFilesystem] = []
        self._closed = False
        self._lock = threading.Lock()

    #: A stage's directory is its own: nothing reads the image stage's after its last step.
    defers_files = True
    #: A stage's directory is made when a step first reads its files (see ``LazyStage``).
    lazy = True
    #: Nothing reads the stages' directories once the layers are in the blob store.
    closes_before_outputs = True

    def prepare(self) -> None:
        """The overlay probe (a mount) runs while the context is read and the base pulled."""
        in_background("kiln-snapshotter", self.choose)

    def jobs(self, requested: int | None) -> int:
        """Stages have directories of their own: as many at once as asked, or as cores."""
        return requested or default_jobs()

    def runner(self, isolation: str) -> Runner:
        return select_runner(isolation)

    @property
    def kind(self) -> str:
        """The snapshotter in use, chosen on first use."""
        with self._lock:
            if self._kind is None:
                self._kind = select_snapshotter(self.requested, self.workspace)
            return self._kind

    def choose(self) -> None:
        """Choose the snapshotter now, unless the build is over (``prepare`` calls this on
        another thread at the start, so the overlay probe overlaps the base image pull)."""
        with self._lock:
            if self._kind is None and not self._closed:
                self._kind = select_snapshotter(self.requested, self.workspace)

    def create(self, layers: Sequence[Layer], label: str) -> StageFilesystem:
        """A writable filesystem holding ``layers``, for one stage (or a COPY --from image)."""
        with self._lock:  # stages are made from parallel threads
            directory = self.workspace.new_rootfs(label)
        stage_fs: StageFilesystem
        if self.kind == "walk":
            for layer in layers:
                with layer.open_uncompressed() as stream:
                    apply_layer(stream, directory)
            stage_fs = WalkStage(directory)
        else:
            lowers: list[Path] = []
            chain: str | None = None
            for layer in layers:
                chain = chain_id(chain, layer.diff_id)
                lowers.append(self._layer_dir(layer, lowers, chain))
            stage_fs = OverlayStage(directory, lowers, self.built)
        self._made.append(stage_fs)
        return stage_fs

    def detached(self, layers: Sequence[Layer], label: str) -> Path:
        """A directory holding ``layers``, read by COPY --from an image."""
        return self.create(layers, label).rootfs

    def stage_source(self, rootfs: Callable[[], Path], layers: Sequence[Layer], label: str) -> Path:
        """Where COPY --from=<stage> reads: that stage's own root, left as it finished."""
        return rootfs()

    def close(self) -> None:
        """Unmount everything this build mounted (newest first)."""
        with self._lock:  # waits for a probe under way: its mount is gone when this returns
            self._closed = True
        while self._made:
            self._made.pop().close()

    def _layer_dir(self, layer: Layer, lowers: Sequence[Path], chain: str) -> Path:
        """The directory for ``layer`` over ``lowers``: one this build made, or from the store.

        A layer this build made is the upper directory of its step, which ran on the very
        layers below it, so it is right as it is.
        """
        built = self.built.get(layer.diff_id)
        if built is not None:
            return built
        return self.layer_store.ensure_on(layer.diff_id, layer.open_uncompressed, lowers, chain)
