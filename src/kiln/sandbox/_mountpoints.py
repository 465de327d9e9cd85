"""Create the mount points a sandbox needs inside a rootfs, and make them vanish afterwards.

Why: ``/proc``, ``/dev``, ``/sys``, ``/etc/resolv.conf`` and ``/etc/hosts`` must exist in the
rootfs for mounts to land on, but a RUN step's layer is computed by comparing the rootfs before and
after the step. Anything kiln adds for its own purposes must therefore be removed again, and the
parent directories' timestamps put back, so a stat-based snapshotter sees only what the command
did. Existing files are never modified (bind mounts cover them without touching them).

Runs in kiln's own process, in the host mount namespace, so it never follows a symlink inside
the rootfs: a hostile image could point ``etc`` or ``proc`` anywhere on the host.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from kiln.errors import SandboxError
from kiln.sandbox._plan import FileBind

#: Directories that get a fresh filesystem mounted over them.
MOUNT_DIRS = ("proc", "dev", "sys")


@dataclass(frozen=True)
class Stub:
    """A mount point kiln created, to be removed after the step."""

    path: Path
    identity: tuple[int, int]  # (st_dev, st_ino), so we never remove something the command made
    is_dir: bool
    any_size: bool = False  # a file kiln filled itself (else only an empty stub is removed)


@dataclass
class Ledger:
    """What was created, and the parents' times before and after (mutable bookkeeping)."""

    stubs: list[Stub] = field(default_factory=list)
    saved_times: dict[Path, tuple[int, int]] = field(default_factory=dict)
    mtime_after: dict[Path, int] = field(default_factory=dict)

    def note_parent(self, parent: Path) -> None:
        if parent not in self.saved_times:
            st = os.lstat(parent)
            self.saved_times[parent] = (st.st_atime_ns, st.st_mtime_ns)

    def seal(self) -> None:
        """Remember each parent's mtime once all stubs exist, to detect the command's changes."""
        for parent in self.saved_times:
            self.mtime_after[parent] = os.lstat(parent).st_mtime_ns


@contextmanager
def mount_points(rootfs: Path, files: dict[str, Path]) -> Iterator[tuple[FileBind, ...]]:
    """Ensure mount points exist in ``rootfs`` for the duration of the block.

    ``files`` maps rootfs-relative targets (``etc/hosts``) to the host files to bind there.
    Yields the binds that can safely be made. Raises ``SandboxError`` when ``rootfs`` or one of
    its mount points is unusable.
    """
    ledger = Ledger()
    try:
        for name in MOUNT_DIRS:
            ensure_dir(ledger, rootfs / name, required=True)
        binds = [_prepare_file(ledger, rootfs, rel, src) for rel, src in files.items()]
        ledger.seal()
        yield tuple(b for b in binds if b is not None)
    finally:
        remove_stubs(ledger)


def _prepare_file(ledger: Ledger, rootfs: Path, rel: str, source: Path) -> FileBind | None:
    if not source.is_file():
        return None
    if not ensure_dir(ledger, (rootfs / rel).parent, required=False):
        return None  # a symlink or not a directory: binding below it would not be safe
    target = rootfs / rel
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        ledger.note_parent(target.parent)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        st = os.fstat(fd)
        os.close(fd)
        ledger.stubs.append(Stub(target, (st.st_dev, st.st_ino), is_dir=False))
        return FileBind(str(source), rel)
    # A symlink (e.g. into /run/systemd) cannot be followed safely from the host; leave it alone.
    return FileBind(str(source), rel) if stat.S_ISREG(st.st_mode) else None


def ensure_dir(ledger: Ledger, path: Path, *, required: bool) -> bool:
    """Make sure ``path`` is a real directory; return False if it is something else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        ledger.note_parent(path.parent)
        try:
            os.mkdir(path, 0o755)
            os.chmod(path, 0o755)  # independent of kiln's umask
        except OSError as exc:
            raise SandboxError(
                f"cannot create mount point {path}: {exc.strerror}",
                hint="the rootfs must be writable by kiln",
            ) from exc
        st = os.lstat(path)
        ledger.stubs.append(Stub(path, (st.st_dev, st.st_ino), is_dir=True))
        return True
    if stat.S_ISDIR(st.st_mode):
        return True
    if required:
        raise SandboxError(
            f"cannot mount over {path}: it is not a directory",
            hint=f"the image's /{path.name} must be a directory (or absent)",
        )
    return False


def remove_stubs(ledger: Ledger) -> None:
    # A parent whose mtime moved since the stubs were made was changed by the command itself;
    # its new mtime is a real change and must stay visible.
    untouched = [
        parent
        for parent in ledger.saved_times
        if parent not in ledger.mtime_after  # set-up failed before anything ran
        or _mtime_or_none(parent) == ledger.mtime_after[parent]
    ]
    for stub in reversed(ledger.stubs):
        _remove_if_ours(stub)
    for parent in untouched:
        with contextlib.suppress(FileNotFoundError):  # it was one of our stubs, now gone
            os.utime(parent, ns=ledger.saved_times[parent], follow_symlinks=False)


def _remove_if_ours(stub: Stub) -> None:
    try:
        st = os.lstat(stub.path)
        if (st.st_dev, st.st_ino) != stub.identity:
            return
        if stub.is_dir:
            os.rmdir(stub.path)
        elif st.st_size == 0 or stub.any_size:
            os.unlink(stub.path)
    except OSError:
        pass  # the command put something in it: that is part of its result, keep it


def _mtime_or_none(path: Path) -> int | None:
    try:
        return os.lstat(path).st_mtime_ns
    except FileNotFoundError:
        return None
