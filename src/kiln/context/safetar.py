"""Unpack a build-context tarball without letting it write outside its directory.

Why our own loop instead of ``TarFile.extractall``: a context archive is untrusted input. We
reject absolute names and ``..`` elements, never write *through* a symlink that an earlier
entry created (the classic "symlink, then child of the symlink" escape), only hard-link to
regular files already inside the destination, and never create device nodes. Symlinks are
created as symlinks and not followed; COPY resolves them later, scoped to the context root.
zstd archives (which ``tarfile`` cannot read) are streamed through kiln.fs's ``zstd -d`` reader.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zlib
from contextlib import ExitStack
from pathlib import Path

from kiln.errors import ContextError, LayerError
from kiln.fs import open_layer
from kiln.fs.layerstream import ZSTD_MAGIC

_SKIPPED_TYPES = (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)


def _safe_name(name: str, archive: Path) -> list[str]:
    """Split an entry name into path elements, refusing anything that could escape."""
    if name.startswith("/"):
        raise ContextError(f"{archive}: refusing absolute entry name {name!r}")
    elements = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in elements:
        raise ContextError(f"{archive}: refusing entry name with '..': {name!r}")
    return elements


def _prepare_parent(dest: Path, elements: list[str], archive: Path) -> Path:
    """Create missing parent directories; refuse to pass through a symlink or a file."""
    current = dest
    for name in elements[:-1]:
        current = current / name
        try:
            info = os.lstat(current)
        except FileNotFoundError:
            current.mkdir(mode=0o755)
            continue
        if not stat.S_ISDIR(info.st_mode):
            raise ContextError(
                f"{archive}: entry {'/'.join(elements)!r} goes through non-directory {name!r}"
            )
    return current / elements[-1]


def _remove_existing(path: Path, keep_dir: bool) -> None:
    """Later entries replace earlier ones, as with ``tar -x``."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if not keep_dir:
            shutil.rmtree(path)
    else:
        path.unlink()


def _write_file(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    if source is None:
        raise ContextError(f"cannot read {member.name!r} from archive")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with source, os.fdopen(os.open(target, flags, 0o600), "wb") as out:
        shutil.copyfileobj(source, out)
    os.chmod(target, member.mode & 0o7777)
    os.utime(target, (member.mtime, member.mtime))


def _extract_member(
    tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, archive: Path
) -> tuple[Path, int, float] | None:
    """Extract one entry; return (path, mode, mtime) for directories, fixed up at the end."""
    elements = _safe_name(member.name, archive)
    if not elements or member.type in _SKIPPED_TYPES:
        return None
    target = _prepare_parent(dest, elements, archive)
    _remove_existing(target, keep_dir=member.isdir())
    if member.isdir():
        target.mkdir(mode=0o700, exist_ok=True)
        return target, member.mode & 0o7777, member.mtime
    if member.issym():
        os.symlink(member.linkname, target)
        os.utime(target, (member.mtime, member.mtime), follow_symlinks=False)
    elif member.islnk():
        link_elements = _safe_name(member.linkname, archive)
        source = _prepare_parent(dest, link_elements, archive) if link_elements else dest
        if not source.is_symlink() and source.is_file():
            os.link(source, target, follow_symlinks=False)
        else:
            raise ContextError(f"{archive}: hard link {member.name!r} to a non-file")
    elif member.isreg():
        _write_file(tar, member, target)
    else:
        raise ContextError(f"{archive}: unsupported entry type for {member.name!r}")
    return None


def _open_archive(archive: Path, stack: ExitStack) -> tarfile.TarFile:
    """Open ``archive`` for reading; zstd (which tarfile lacks) streams through ``zstd -d``."""
    with open(archive, "rb") as probe:
        magic = probe.read(len(ZSTD_MAGIC))
    if magic != ZSTD_MAGIC:
        return stack.enter_context(tarfile.open(archive, "r:*"))
    try:
        stream = stack.enter_context(open_layer(archive))
    except LayerError as exc:
        raise ContextError(exc.message, hint="install zstd, or use another compression") from exc
    return stack.enter_context(tarfile.open(fileobj=stream, mode="r|"))


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract ``archive`` (plain, gzip, bzip2, xz or zstd; detected from content) into ``dest``.

    Character/block devices and FIFOs are skipped: a context only feeds COPY/ADD, and an
    unprivileged builder could not create devices anyway.
    """
    directories: list[tuple[Path, int, float]] = []
    try:
        with ExitStack() as stack:
            tar = _open_archive(archive, stack)
            for member in tar:
                fixup = _extract_member(tar, member, dest, archive)
                if fixup is not None:
                    directories.append(fixup)
    except (tarfile.TarError, EOFError, zlib.error, LayerError) as exc:
        raise ContextError(f"cannot read build context archive {archive}: {exc}") from exc
    except OSError as exc:
        raise ContextError(f"cannot extract build context archive {archive}: {exc}") from exc
    for path, mode, mtime in reversed(directories):
        os.chmod(path, mode)
        os.utime(path, (mtime, mtime))
