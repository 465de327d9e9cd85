"""Deleting a directory tree however deep it is.

Why not ``shutil.rmtree``: it recurses once per level, so a tree deeper than Python's recursion
limit (about 1,000 levels; a COPY can make one) raises ``RecursionError`` even with
``ignore_errors=True``. This walks with an explicit stack instead, through directory
descriptors (``openat``-style), so each step costs one path component whatever the depth, and
symlinks are removed, never followed.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(path: Path | str, *, ignore_errors: bool = False) -> None:
    """Delete ``path`` and everything under it (a symlink or file at ``path``: just it)."""
    try:
        _remove(os.fspath(path))
    except FileNotFoundError:
        pass
    except OSError:
        if not ignore_errors:
            raise


def _remove(top: str) -> None:
    if not stat.S_ISDIR(os.lstat(top).st_mode):
        os.unlink(top)
        return
    # Frames: (descriptor of a directory, its name in its parent, its subdirectories still to do)
    stack: list[tuple[int, str, list[str]]] = []
    fd = os.open(top, _OPEN_DIR)
    try:
        stack.append((fd, top, _clear_files(fd)))
    except BaseException:
        os.close(fd)
        raise
    try:
        while stack:
            fd, name, subdirectories = stack[-1]
            if subdirectories:
                child = subdirectories.pop()
                child_fd = os.open(child, _OPEN_DIR, dir_fd=fd)
                try:
                    stack.append((child_fd, child, _clear_files(child_fd)))
                except BaseException:
                    os.close(child_fd)
                    raise
                continue
            stack.pop()
            os.close(fd)
            if stack:
                os.rmdir(name, dir_fd=stack[-1][0])
        os.rmdir(top)
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-directory in the directory ``fd``; return its subdirectories' names."""
    subdirectories: list[str] = []
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirectories.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=fd)
    return subdirectories
