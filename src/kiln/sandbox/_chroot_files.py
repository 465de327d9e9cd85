"""What a chroot'ed RUN step gets as files: the host's ``/etc/resolv.conf`` and ``/etc/hosts``.

Why copies: RUN steps expect working name resolution. ``/proc``, ``/dev`` and ``/sys`` are
mounted by the chroot helper in the step's own mount namespace (``_rootfs``); the two ``/etc``
files are written over the rootfs's own for the duration of one step and then put back exactly:
created entries are removed, overwritten files get their original bytes, mode, owner and times
back, and parent directories their mtimes. Both files are excluded from RUN snapshots, so
neither can reach a layer (as with ``docker build``, whose bind mounts hide them).

Runs in kiln's own process, outside the chroot, so it never follows a symlink in the rootfs.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from kiln.sandbox._etc_files import HOST_HOSTS, HOST_RESOLV_CONF, hosts_content
from kiln.sandbox._mountpoints import Ledger, Stub, ensure_dir, remove_stubs


@dataclass(frozen=True)
class _Saved:
    """A rootfs file kiln overwrote for one step, and how to put it back."""

    path: Path
    identity: tuple[int, int]
    content: bytes
    mode: int
    owner: tuple[int, int]
    times: tuple[int, int]


@contextmanager
def chroot_files(rootfs: Path, hostname: str) -> Iterator[tuple[str, ...]]:
    """Provide the host's ``/etc`` files in ``rootfs`` for one step.

    Yields what could not be provided (``"/etc/hosts"`` ...), for the warning.
    """
    ledger = Ledger()
    saved: list[_Saved] = []
    missing: list[str] = []
    try:
        for rel, content in _etc_contents(hostname).items():
            if not _place(ledger, saved, rootfs, rel, content):
                missing.append(f"/{rel}")
        ledger.seal()
        yield tuple(missing)
    finally:
        for entry in reversed(saved):
            _restore(entry)
        remove_stubs(ledger)


def _etc_contents(hostname: str) -> dict[str, bytes]:
    contents = {}
    with contextlib.suppress(OSError):
        contents["etc/resolv.conf"] = HOST_RESOLV_CONF.read_bytes()
    try:
        hosts = HOST_HOSTS.read_text(encoding="utf-8", errors="replace")
    except OSError:
        hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    contents["etc/hosts"] = hosts_content(hosts, hostname).encode()
    return contents


def _place(ledger: Ledger, saved: list[_Saved], rootfs: Path, rel: str, content: bytes) -> bool:
    target = rootfs / rel
    if not ensure_dir(ledger, target.parent, required=False):
        return False  # a symlink or not a directory: writing below it would not be safe
    try:
        st = os.lstat(target)
    except FileNotFoundError:
        ledger.note_parent(target.parent)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, content)
            os.fchmod(fd, 0o644)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        ledger.stubs.append(Stub(target, (st.st_dev, st.st_ino), is_dir=False, any_size=True))
        return True
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1:
        return False  # a symlink (cannot be followed safely) or a hard link (shared content)
    saved.append(
        _Saved(
            path=target,
            identity=(st.st_dev, st.st_ino),
            content=target.read_bytes(),
            mode=stat.S_IMODE(st.st_mode),
            owner=(st.st_uid, st.st_gid),
            times=(st.st_atime_ns, st.st_mtime_ns),
        )
    )
    _rewrite(target, content)
    os.chmod(target, 0o644, follow_symlinks=False)
    return True


def _restore(entry: _Saved) -> None:
    try:
        st = os.lstat(entry.path)
    except FileNotFoundError:
        st = None
    if st is not None and (st.st_dev, st.st_ino) != entry.identity:
        return  # the step replaced the file; leave the parent's diff honest
    if st is None:
        fd = os.open(entry.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.close(fd)
    _rewrite(entry.path, entry.content)
    os.chown(entry.path, *entry.owner, follow_symlinks=False)
    os.chmod(entry.path, entry.mode, follow_symlinks=False)
    os.utime(entry.path, ns=entry.times, follow_symlinks=False)


def _rewrite(path: Path, content: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
