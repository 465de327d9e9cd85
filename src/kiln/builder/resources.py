"""Running out of disk, quota, file descriptors or memory: one clear error, not a traceback.

Why its own module: these failures can hit any write (a layer, an unpacked base image, a pulled
blob, a saved tarball), and what the user needs is the same every time: which directory filled
up, what kiln was writing there, and where to look. Writers wrap their work in
``resource_errors(what, directory)``; whatever they wrote is removed by their own cleanup (a
layer writer deletes its partial blob, the workspace deletes itself), so the error is the only
thing left behind. ``describe`` gives the same wording for a failure no writer wrapped.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiln.errors import Remedy, ResourceError

#: errno -> what ran out; anything else is not a resource error.
RESOURCE_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EMFILE: "too many open files (the process's file descriptor limit)",
    errno.ENFILE: "too many open files in the system",
    errno.ENOMEM: "out of memory",
}

_DISK = (errno.ENOSPC, errno.EDQUOT)


def is_resource_error(exc: BaseException) -> bool:
    """True for the OSErrors (and MemoryError) that mean the machine ran out of something."""
    if isinstance(exc, MemoryError):
        return True
    return isinstance(exc, OSError) and exc.errno in RESOURCE_ERRNOS


def describe(
    exc: OSError | MemoryError,
    what: str,
    directory: Path | str | None,
    option: str | None = "work_dir",
) -> ResourceError:
    """The ``ResourceError`` for ``exc``, raised while writing ``what`` into ``directory``;
    ``option`` is the build option that chose that directory (None: none did)."""
    code = errno.ENOMEM if isinstance(exc, MemoryError) else exc.errno
    reason = RESOURCE_ERRNOS.get(code or errno.ENOMEM, str(exc))
    where = f" in {directory}" if directory is not None else ""
    message = f"{reason} while writing {what}{where}"
    remedies: tuple[Remedy, ...] = ()
    if code in _DISK:
        hint = "free space there" + (", or point {0} at a larger filesystem" if option else "")
        remedies = (Remedy(option),) if option else ()
    elif code in (errno.EMFILE, errno.ENFILE):
        hint = "raise the open-files limit (ulimit -n), or build fewer stages at once ({0})"
        remedies = (Remedy("jobs", 1),)
    else:
        hint = "give the build more memory, or build fewer stages at once ({0})"
        remedies = (Remedy("jobs", 1),)
    return ResourceError(
        message,
        directory=None if directory is None else str(directory),
        what=what,
        hint=hint,
        remedies=remedies,
    )


def exc_directory(exc: OSError | MemoryError) -> str | None:
    """The directory of the file an OSError names, if it names one."""
    name = getattr(exc, "filename", None)
    return str(Path(str(name)).parent) if name else None


@contextmanager
def resource_errors(
    what: str, directory: Path | str | None, option: str | None = "work_dir"
) -> Iterator[None]:
    """Turn a resource OSError (or MemoryError) inside the block into a ``ResourceError``."""
    try:
        yield
    except (OSError, MemoryError) as exc:
        if not is_resource_error(exc):
            raise
        raise describe(exc, what, directory, option) from exc
