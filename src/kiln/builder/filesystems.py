"""What the build loop asks of the stages' filesystems, whichever backend makes them.

Why a protocol: an ordinary build gives each stage a directory of its own (the overlay or walk
snapshotter, `stage_filesystems`); an inplace build resets the container's `/` for each stage
(`inplace_filesystems`). Where the two differ in what the build loop must do (how many stages
may run at once, which RUN backend fits, whether a last COPY may leave its files uncreated, when
the filesystems may be taken down), the backend answers, so the builder never branches on which
backend it has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from kiln.builder.inplace_filesystems import InplaceFilesystems
from kiln.builder.options import BuildOptions
from kiln.builder.stage_filesystems import StageFilesystems
from kiln.builder.workspace import Workspace
from kiln.fs import StageFilesystem
from kiln.image import Layer
from kiln.sandbox import Runner


class Filesystems(Protocol):
    """Makes every stage's filesystem for one build and takes them all down at its end."""

    @property
    def defers_files(self) -> bool:
        """Whether the image's last file step may leave new files uncreated (the layer reads
        them from their sources): True where nothing else reads the stage's root afterwards."""
        ...

    @property
    def lazy(self) -> bool:
        """Whether a stage's filesystem may wait for the first step that reads it (False: each
        stage's files are made at its start, and every cache hit applied at once)."""
        ...

    @property
    def closes_before_outputs(self) -> bool:
        """Whether ``close`` may run while the outputs are written (False: closing puts back
        what the outputs live in, so it waits for them)."""
        ...

    def prepare(self) -> None:
        """Start what takes a while (a mount probe) on another thread; called once, first."""
        ...

    def jobs(self, requested: int | None) -> int:
        """How many stages may be built at once, ``--jobs`` being ``requested``."""
        ...

    def runner(self, isolation: str) -> Runner:
        """The RUN backend for ``--isolation`` that fits these filesystems."""
        ...

    def create(self, layers: Sequence[Layer], label: str) -> StageFilesystem:
        """A writable filesystem holding ``layers``, for one stage."""
        ...

    def detached(self, layers: Sequence[Layer], label: str) -> Path:
        """A directory holding ``layers``, read by COPY --from an image."""
        ...

    def stage_source(self, rootfs: Callable[[], Path], layers: Sequence[Layer], label: str) -> Path:
        """Where COPY --from=<stage> reads the finished stage whose root ``rootfs`` gives."""
        ...

    def close(self) -> None:
        """Take down what was made (unmount, or put `/` back); safe to call again."""
        ...


def open_workspace(options: BuildOptions, inplace: str | None) -> Workspace:
    """The build's workspace: ``--work-dir``, else (inplace, where `/` is the build root)
    the kiln dir, else a temporary directory."""
    work_dir = options.work_dir or (options.kiln_dir if inplace else None)
    return Workspace(work_dir, options.cache_dir)


def open_filesystems(
    options: BuildOptions, workspace: Workspace, inplace: str | None
) -> Filesystems:
    """The stages' filesystems: `/` itself when ``inplace`` says why, else directories."""
    if inplace:
        return InplaceFilesystems(options, workspace, reason=inplace)
    return StageFilesystems(options.snapshotter, workspace)
