"""A stage's writable root filesystem plus the way its steps' diffs are found.

Why one protocol over two snapshotters: the executor only needs "where do steps run", "what did
this step change, and where are those files read from", and "the layer is written, move on". The
walk flavour is a plain directory compared by stat before and after each RUN; the overlay flavour
is a mount whose upper directory is the diff. The executor never branches on which it has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Protocol

from kiln.closeable import Closeable

from .overlay import OverlayRootfs
from .overlaydiff import overlay_changes
from .protected import ProtectedPaths
from .snapshot import Changes, WalkSnapshotter


class StageFilesystem(Protocol):
    """Where one stage's steps run and how their changes are read back."""

    @property
    def rootfs(self) -> Path:
        """The directory RUN chroots into and COPY/WORKDIR write into."""

    @property
    def protected(self) -> ProtectedPaths | None:
        """Paths in ``rootfs`` that COPY/WORKDIR must not write, even through a symlink."""

    def begin(self, exclude: Iterable[str]) -> None:
        """Before a RUN: remember the state (``exclude``: paths never part of a diff)."""

    def diff(self, written: Sequence[str] | None) -> tuple[Path, Changes]:
        """What the step changed, and the directory to read those paths from.

        ``written`` lists the paths a COPY/WORKDIR wrote (None after a RUN).
        """

    def committed(self, diff_id: str) -> None:
        """The step's diff was written as a layer named ``diff_id``; start the next step."""

    def close(self) -> None:
        """Release mounts; the directories themselves belong to the workspace."""


class WalkStage(Closeable):
    """A plain directory; RUN diffs by two walks, COPY/WORKDIR by the paths they wrote."""

    def __init__(self, rootfs: Path) -> None:
        self._rootfs = rootfs
        self._snapshotter: WalkSnapshotter | None = None
        self._exclude: frozenset[str] = frozenset()
        self._fresh = False  # the last RUN's final scan still describes the tree

    @property
    def rootfs(self) -> Path:
        return self._rootfs

    @property
    def protected(self) -> ProtectedPaths | None:
        return None

    def begin(self, exclude: Iterable[str]) -> None:
        wanted = frozenset(exclude)
        if self._snapshotter is not None and self._fresh and wanted == self._exclude:
            self._snapshotter.rebase()  # nothing touched the tree since: reuse that walk
        else:
            self._snapshotter = WalkSnapshotter(self._rootfs, exclude=wanted)
            self._snapshotter.baseline()
            self._exclude = wanted
        self._fresh = False

    def diff(self, written: Sequence[str] | None) -> tuple[Path, Changes]:
        if written is not None:
            self._fresh = False
            return self._rootfs, Changes(changed=tuple(sorted(set(written))))
        assert self._snapshotter is not None, "begin() must precede a RUN diff"
        changes = self._snapshotter.changes()
        self._fresh = True
        return self._rootfs, changes

    def committed(self, diff_id: str) -> None:
        pass

    def close(self) -> None:
        pass


class OverlayStage(Closeable):
    """An overlay mount; each step's diff is its upper directory, which then becomes a lower.

    ``built`` (shared between stages) learns the directory of every layer committed here, so
    a later ``FROM this-stage`` mounts those directories instead of unpacking the blobs.
    """

    def __init__(self, directory: Path, lowers: Sequence[Path], built: dict[str, Path]) -> None:
        self._overlay = OverlayRootfs(directory, lowers)
        self._built = built
        self._exclude: tuple[str, ...] = ()

    @property
    def rootfs(self) -> Path:
        return self._overlay.rootfs

    @property
    def protected(self) -> ProtectedPaths | None:
        return None

    def begin(self, exclude: Iterable[str]) -> None:
        self._exclude = tuple(exclude)

    def diff(self, written: Sequence[str] | None) -> tuple[Path, Changes]:
        exclude = self._exclude if written is None else ()
        self._exclude = ()
        upper = self._overlay.upper
        return upper, overlay_changes(upper, self._overlay.lowers, exclude)

    def committed(self, diff_id: str) -> None:
        self._built[diff_id] = self._overlay.rotate()

    def close(self) -> None:
        self._overlay.close()
