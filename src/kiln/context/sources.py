"""Where a build context comes from, and the one shape every source is turned into.

Why a protocol: the build only needs "a local directory plus its ignore rules". Whether that
directory is the user's checkout, an extracted tarball or (later) a git clone is the source's
business, and so is cleaning up afterwards. Callers never branch on the kind of source.

Spec strings follow Kaniko's ``--context`` flag: a plain path or ``dir://PATH`` (relative to
the working directory), ``tar://PATH`` for a tar archive (plain or compressed). Remote schemes
(``git://``, ``s3://``, ``gs://``, ``https://`` ...) are recognised and refused clearly.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from kiln.context.ignore import IgnoreMatcher
from kiln.context.ignorefile import find_ignore_file
from kiln.context.safetar import extract_tar
from kiln.errors import ContextError

DEFAULT_DOCKERFILE = "Dockerfile"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
SUPPORTED_SCHEMES = ("dir", "tar")


class BuildContext(Protocol):
    """A build context ready for COPY/ADD: a local directory and its ignore rules."""

    @property
    def root(self) -> Path:
        """Absolute, symlink-free directory holding the context's files."""
        ...

    @property
    def ignore(self) -> IgnoreMatcher:
        """The ``.dockerignore`` rules in force (empty when there is no ignore file)."""
        ...

    def close(self) -> None:
        """Release whatever the source created (temporary directories); idempotent."""
        ...

    def __enter__(self) -> Self:
        """``with open_context(spec) as context:`` closes the context on the way out."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(frozen=True)
class LocalContext:
    """A context that is a directory on this machine; ``close`` leaves it alone.

    ``dockerfile`` and ``ignore_file`` record what was found, for messages and the build.
    """

    root: Path
    ignore: IgnoreMatcher = field(default_factory=IgnoreMatcher)
    dockerfile: Path | None = None
    ignore_file: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(os.path.realpath(self.root)))

    def close(self) -> None:
        """Nothing to release: the directory belongs to the user."""

    def __enter__(self) -> LocalContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class ExtractedContext:
    """A context unpacked into a temporary directory that ``close`` removes."""

    def __init__(self, local: LocalContext, tempdir: Path) -> None:
        self._local = local
        self._tempdir = tempdir

    @property
    def root(self) -> Path:
        return self._local.root

    @property
    def ignore(self) -> IgnoreMatcher:
        return self._local.ignore

    @property
    def dockerfile(self) -> Path | None:
        return self._local.dockerfile

    @property
    def ignore_file(self) -> Path | None:
        return self._local.ignore_file

    def close(self) -> None:
        _force_rmtree(self._tempdir)

    def __enter__(self) -> ExtractedContext:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _force_rmtree(path: Path) -> None:
    """Remove a tree even when the archive made some directories read-only."""
    if not path.exists():
        return
    for dirpath, _dirs, _files in os.walk(path):
        mode = os.lstat(dirpath).st_mode
        os.chmod(dirpath, stat.S_IMODE(mode) | stat.S_IRWXU)
    shutil.rmtree(path)


def _locate_dockerfile(root: Path, dockerfile: Path | None, workdir: Path | None) -> Path:
    """Absolute Dockerfile path: as given, else relative to ``workdir``, else to the context."""
    if dockerfile is None:
        return root / DEFAULT_DOCKERFILE
    if dockerfile.is_absolute():
        return dockerfile
    if workdir is not None and (workdir / dockerfile).exists():
        return workdir / dockerfile
    return root / dockerfile


def _local(root: Path, dockerfile: Path | None, workdir: Path | None) -> LocalContext:
    located = _locate_dockerfile(Path(os.path.realpath(root)), dockerfile, workdir)
    ignore_file = find_ignore_file(root, located)
    ignore = IgnoreMatcher.from_file(ignore_file) if ignore_file else IgnoreMatcher()
    return LocalContext(root, ignore, located, ignore_file)


def _existing_dir(path: Path, spec: str) -> Path:
    if not path.exists():
        raise ContextError(f"build context {path} does not exist", hint=f"context was {spec!r}")
    if not path.is_dir():
        raise ContextError(
            f"build context {path} is not a directory",
            hint="use tar://PATH for a tar archive",
        )
    return path


def _open_tar(archive: Path, dockerfile: Path | None) -> ExtractedContext:
    if not archive.is_file():
        raise ContextError(f"build context archive {archive} does not exist")
    tempdir = Path(tempfile.mkdtemp(prefix="kiln-context-"))
    try:
        extract_tar(archive, tempdir)
        # A relative Dockerfile lives inside the archive, as with Kaniko's tar:// contexts.
        return ExtractedContext(_local(tempdir, dockerfile, None), tempdir)
    except BaseException:
        _force_rmtree(tempdir)
        raise


def open_context(
    spec: str, dockerfile: Path | None = None, workdir: Path | None = None
) -> BuildContext:
    """Open the context named by ``spec`` and load its ignore rules.

    ``dockerfile`` (optional) decides which ignore file applies (see ``find_ignore_file``);
    relative paths in ``spec`` and ``dockerfile`` are taken from ``workdir`` (default: cwd).
    Raises ContextError for a missing context or an unsupported scheme.
    """
    base = workdir if workdir is not None else Path.cwd()
    match = _SCHEME.match(spec)
    scheme, rest = (match.group(1).lower(), match.group(2)) if match else ("dir", spec)
    if scheme == "dir":
        root = _existing_dir(base / rest, spec)
        return _local(root, dockerfile, base)
    if scheme == "tar":
        return _open_tar(base / rest, dockerfile)
    raise ContextError(
        f"build context scheme {scheme}:// is not supported yet ({spec})",
        hint="use a local directory, dir://PATH or tar://PATH.tar.gz",
    )
