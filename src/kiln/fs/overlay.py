"""A stage's root filesystem as an overlay mount: read-only layers below, one fresh upper per step.

Why: with an overlay, whatever a step writes lands in the upper directory and nowhere else, so
the upper directory *is* the step's diff and computing it costs what the step changed, not what
the image holds (the walk snapshotter has to stat every file twice per step). After a step that
produced a layer, the mount is taken down, the upper directory joins the stack as the topmost
lower directory (its overlay whiteouts and opaque markers mean to a lower what they meant to
the upper), and a new empty upper is mounted: unmount and mount cost milliseconds.

Mount options: ``redirect_dir=off`` makes renaming a lower directory fail with EXDEV so tools
copy it instead (a redirect would be invisible in the upper directory), ``metacopy=off`` makes a
chmod copy the data up too (a metadata-only upper file has no content to put in a tar) and
``index=off`` keeps the upper free of the inode index.

Depth: mount(2) copies one page of options, so lower directories are named through an ``O_PATH``
descriptor of a directory of numbered symlinks (``/proc/self/fd/N/17``: about 21 bytes a layer,
whatever the work directory's path), which fits about 170 layers (`MAX_LAYERS`); the kernel's
own limit is 500. Deeper stacks are refused with a hint (use ``--snapshotter walk``); merging
lower directories into one is not done (it would copy every file of the merged layers).

The same directory twice: overlayfs refuses a lower directory listed twice (ELOOP, "Too many
levels of symbolic links"), yet identical layers in one chain are ordinary (two no-op RUNs give
the same empty layer; Docker builds such images). Only the topmost occurrence is mounted, which
shows exactly the same tree: every name a lower copy holds, its upper copy holds too, so a lower
copy can only add to directories the upper one already merges, with the same entries.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kiln.closeable import Closeable
from kiln.errors import LayerError, Remedy

from ._mount import MNT_DETACH, mount, umount

log = logging.getLogger("kiln.fs")

OVERLAY_OPTIONS = "redirect_dir=off,metacopy=off,index=off"
#: Overlay's own xattrs live under ``trusted.`` as root, under ``user.`` with ``userxattr``.
TRUSTED_PREFIX = "trusted.overlay."
_MAX_OPTIONS = 4000  # mount(2) copies at most one page of options
#: Layers (lower directories plus nothing else) one overlay mount takes here (module docstring).
MAX_LAYERS = 170
#: The remedy for every overlay failure: the walk snapshotter needs no mounts.
WALK = Remedy("snapshotter", "walk")


def overlay_problem(scratch: Path) -> str | None:
    """None if an overlay can be mounted under ``scratch`` by this process, else why not."""
    probe = Path(tempfile.mkdtemp(prefix="overlay-probe-", dir=scratch))
    try:
        for name in ("lower", "upper", "work", "merged"):
            (probe / name).mkdir()
        data = f"lowerdir={probe}/lower,upperdir={probe}/upper,workdir={probe}/work"
        try:
            _mount_overlay(str(probe / "merged"), f"{data},{OVERLAY_OPTIONS}")
        except OSError as exc:
            return exc.strerror or str(exc)
        try:
            os.mknod(probe / "merged" / "x", 0o600)  # overlay needs whiteouts in the upper fs
            os.unlink(probe / "merged" / "x")
        finally:
            umount(str(probe / "merged"))
        return None
    except OSError as exc:
        return str(exc)
    finally:
        shutil.rmtree(probe, ignore_errors=True)


#: Whether this kernel takes ``volatile`` (5.10+); None until the first mount tells.
_volatile: bool | None = None


def _mount_overlay(target: str, data: str) -> None:
    """Mount an overlay ``volatile`` where the kernel allows: no sync of the upper filesystem.

    Without it every unmount (one per step) runs ``syncfs`` on the work dir's filesystem,
    flushing whatever any process left dirty there: tens to hundreds of milliseconds per step
    on a busy disk, for build scratch that is thrown away. A volatile mount leaves
    ``work/work/incompat/volatile``, which must go before the work dir is mounted again.
    """
    global _volatile
    if _volatile is not False:
        try:
            mount("overlay", target, "overlay", 0, f"{data},volatile")
            _volatile = True
            return
        except OSError as exc:
            if exc.errno != errno.EINVAL or _volatile:
                raise
            _volatile = False
    mount("overlay", target, "overlay", 0, data)


def _remove_volatile_marker(work: Path) -> None:
    """Remove ``work/work/incompat/volatile`` (it holds one empty file, ``dirty``)."""
    volatile = work / "work" / "incompat" / "volatile"
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(volatile / "dirty")
        os.rmdir(volatile)
    except FileNotFoundError:
        pass  # not a volatile mount (a kernel before 5.10)
    except OSError:
        shutil.rmtree(volatile, ignore_errors=True)  # something else in it: whatever it is


def _topmost_occurrences(lowers: Sequence[Path]) -> list[Path]:
    """``lowers`` (bottom-first) without the lower repeats of a directory (module docstring)."""
    seen: set[str] = set()
    kept: list[Path] = []
    for lower in reversed(lowers):
        key = os.path.realpath(lower)
        if key not in seen:
            seen.add(key)
            kept.append(lower)
    kept.reverse()
    return kept


class OverlayRootfs(Closeable):
    """One overlay mount at ``self.rootfs`` whose layers grow by one upper dir per ``rotate()``.

    ``lowers`` are bottom-first (image order). ``directory`` (made if missing) must be empty; it
    holds ``merged/``, ``work/``, ``upper-N/`` and ``l/``, so uppers and work share a filesystem.
    """

    def __init__(self, directory: Path, lowers: Sequence[Path]) -> None:
        self.directory = directory
        self.rootfs = directory / "merged"
        self._links = directory / "l"
        self._work = directory / "work"
        self._layers: list[Path] = []
        self._uppers = 0
        self._mounts = 0
        self.mounted = False
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        for sub in (self.rootfs, self._links, self._work):
            sub.mkdir(mode=0o755)
        if not lowers:
            empty = directory / "empty"
            empty.mkdir(mode=0o755)
            lowers = [empty]
        for lower in _topmost_occurrences(lowers):
            self._push_lower(lower)
        self.upper = self._new_upper()
        self._mount()

    @property
    def lowers(self) -> tuple[Path, ...]:
        """The lower directories, bottom-first (what ``rootfs`` shows, minus the upper)."""
        return tuple(self._layers)

    def rotate(self) -> Path:
        """Freeze the current upper into the lower stack and mount a fresh upper; return the old."""
        frozen = self.upper
        self._unmount()
        self._push_lower(frozen)
        self.upper = self._new_upper()
        self._mount()
        return frozen

    def close(self) -> None:
        """Unmount (lazily if something still holds it busy). Safe to call twice."""
        if self.mounted:
            self._unmount()

    def _push_lower(self, path: Path) -> None:
        link = self._links / str(len(self._layers))
        os.symlink(os.path.abspath(path), link)
        self._layers.append(path)

    def _new_upper(self) -> Path:
        self._uppers += 1
        upper = self.directory / f"upper-{self._uppers}"
        upper.mkdir(mode=0o755)
        return upper

    def _mount(self) -> None:
        if len(self._layers) > MAX_LAYERS:
            raise LayerError(
                f"{len(self._layers)} layers are too many for one overlay mount "
                f"(at most {MAX_LAYERS})",
                hint="use {0}, or squash some steps into one RUN",
                remedies=[WALK],
            )
        # The mount resolves these paths through our descriptors; they are closed right after.
        links, upper, work = (
            os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            for path in (self._links, self.upper, self._work)
        )
        try:
            names = (f"/proc/self/fd/{links}/{i}" for i in reversed(range(len(self._layers))))
            data = (
                f"lowerdir={':'.join(names)},upperdir=/proc/self/fd/{upper},"
                f"workdir=/proc/self/fd/{work},{OVERLAY_OPTIONS}"
            )
            if len(data) > _MAX_OPTIONS:
                raise LayerError(
                    f"{len(self._layers)} layers do not fit one overlay mount's options",
                    hint="use a shorter {0}, or {1}",
                    remedies=[Remedy("work_dir"), WALK],
                )
            if self._mounts:  # the last (volatile) mount of this work dir left its marker
                _remove_volatile_marker(self._work)
            _mount_overlay(str(self.rootfs), data)
            self._mounts += 1
        except OSError as exc:
            raise LayerError(
                f"cannot mount the overlay for {self.rootfs}: {exc.strerror}",
                hint="use {0} where overlay mounts are not allowed",
                remedies=[WALK],
            ) from exc
        finally:
            for fd in (links, upper, work):
                os.close(fd)
        self.mounted = True

    def _unmount(self) -> None:
        try:
            umount(str(self.rootfs))
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise LayerError(f"cannot unmount {self.rootfs}: {exc.strerror}") from exc
            log.warning("overlay %s is busy; detaching it lazily", self.rootfs)
            with contextlib.suppress(OSError):
                umount(str(self.rootfs), MNT_DETACH)
        self.mounted = False
