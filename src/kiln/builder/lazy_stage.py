"""A stage's filesystem, made only when a step (or a later stage) first reads its files.

Why: a cache hit gives a step's layer without running it, so a stage whose steps all hit needs
no files at all: not its base unpacked, not the cached layers downloaded. The filesystem is
therefore made at the first step that needs it (a RUN, a COPY/ADD or WORKDIR that missed), or
when a later stage's COPY --from reads this one, from every layer the stage has by then: its
base's and the cached ones (downloaded first, several at once). Once made, a layer a later hit
adds is applied before the next reader, so a step always sees exactly the files running every
step before it would have left.

Filesystems that must mirror every stage as it goes (inplace: `/` is the stage's root, and is
what the container keeps) are made eagerly: at the stage's start, each hit applied at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from kiln.builder.cache.replay import replay
from kiln.builder.executor import StageExecutor
from kiln.builder.remote_layer import fetch_layers
from kiln.fs import StageFilesystem
from kiln.image import Layer


class LazyStage:
    """One stage's filesystem and executor, made by ``make_fs`` and ``make_executor`` on first
    use; ``eager`` makes them at once and applies every hit as it comes."""

    def __init__(
        self,
        make_fs: Callable[[Sequence[Layer]], StageFilesystem],
        make_executor: Callable[[StageFilesystem], StageExecutor],
        layers: Sequence[Layer],
        *,
        eager: bool = False,
    ) -> None:
        self._make_fs = make_fs
        self._make_executor = make_executor
        self._executor: StageExecutor | None = None
        self._applied = 0  # how many of the stage's layers the filesystem holds
        self._lock = threading.Lock()  # later stages may read this one from their threads
        self.eager = eager
        if eager:
            self.executor(layers)

    @property
    def made(self) -> bool:
        """Whether the filesystem exists yet."""
        return self._executor is not None

    def executor(self, layers: Sequence[Layer]) -> StageExecutor:
        """The executor on a filesystem holding exactly ``layers`` (the stage's so far)."""
        with self._lock:
            if self._executor is None:
                fetch_layers(layers)
                self._executor = self._make_executor(self._make_fs(layers))
            else:
                fetch_layers(layers[self._applied :])
                for layer in layers[self._applied :]:
                    replay(self._executor.fs, layer)
            self._applied = len(layers)
            return self._executor

    def hit(self, layers: Sequence[Layer]) -> None:
        """A cached layer was added (``layers`` now ends with it): applied at once if eager."""
        if self.eager:
            self.executor(layers)

    def ran(self, layers: Sequence[Layer]) -> None:
        """A step ran on the filesystem, which now holds ``layers``."""
        with self._lock:
            self._applied = len(layers)

    def rootfs(self, layers: Sequence[Layer]) -> Path:
        """The stage's root holding ``layers`` (made now if nothing made it yet)."""
        return self.executor(layers).rootfs
