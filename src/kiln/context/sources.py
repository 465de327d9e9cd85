"""Where a build context comes from, and the one shape every source is turned into.

Why a protocol: the build only needs "a local directory plus its ignore rules". Whether that
directory is the user's checkout, an extracted tarball or a git checkout is the source's
business, and so is cleaning up afterwards. Callers never branch on the kind of source.

Spec strings follow Kaniko's ``--context`` flag (and ``docker build``'s positional argument):

- a plain path or ``dir://PATH`` (relative to the working directory);
- ``tar://PATH`` for a tar archive (plain, gzip, bzip2, xz or zstd), ``tar://stdin`` or ``-``
  for an archive on standard input;
- a git repository: ``git://``, ``ssh://``, ``git@host:path``, or ``http(s)://...`` whose path
  ends in ``.git``, with ``#REF``, ``#REF#COMMIT`` (Kaniko) or ``#REF:SUBDIR`` (BuildKit);
- any other ``http(s)://`` URL: a tar archive to download;
- ``s3://``, ``gs://`` and Azure blob URLs, through optional SDKs.

``sub_path`` (``--context-sub-path``) narrows any of them to a directory inside.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Protocol, Self

from kiln.closeable import Closeable
from kiln.context import download
from kiln.context.gitclone import clone_git_context
from kiln.context.giturl import GitOptions, is_git_spec, parse_git_spec, redact_url
from kiln.context.ignore import IgnoreMatcher
from kiln.context.ignorefile import find_ignore_file
from kiln.context.safetar import extract_tar
from kiln.context.scoped import scoped_resolve, within_context
from kiln.errors import ContextError

DEFAULT_DOCKERFILE = "Dockerfile"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
SUPPORTED_SCHEMES = ("dir", "tar", "git", "ssh", "http", "https", "s3", "gs")
STDIN_SPECS = ("-", "tar://stdin")


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

    @property
    def dockerfile(self) -> Path | None:
        """Where the Dockerfile was located (None when it is not read from a file)."""
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
class LocalContext(Closeable):
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


class WrappedContext(Closeable):
    """Another context's directory, with ignore rules and a clean-up of its own.

    Why one class: a fetched context (``close`` removes its temporary directory) and a context
    with kiln's own directories excluded (``kiln.builder.own_dirs``) each change only a part or
    two of the context they wrap; the rest is the same delegation.
    """

    def __init__(
        self,
        inner: BuildContext,
        release: Callable[[], None],
        *,
        ignore: IgnoreMatcher | None = None,
    ) -> None:
        self._inner = inner
        self._release = release
        self._ignore = inner.ignore if ignore is None else ignore

    @property
    def root(self) -> Path:
        return self._inner.root

    @property
    def ignore(self) -> IgnoreMatcher:
        return self._ignore

    @property
    def dockerfile(self) -> Path | None:
        return self._inner.dockerfile

    def close(self) -> None:
        self._release()


def _force_rmtree(path: Path) -> None:
    """Remove a tree even when the archive made some directories read-only."""
    if not path.exists():
        return
    for dirpath, _dirs, _files in os.walk(path):
        mode = os.lstat(dirpath).st_mode
        os.chmod(dirpath, stat.S_IMODE(mode) | stat.S_IRWXU)
    shutil.rmtree(path)


def _locate_dockerfile(
    root: Path, dockerfile: Path | None, workdir: Path | None, *, remote: bool = False
) -> Path:
    """Absolute Dockerfile path: as given, else relative to ``workdir``, else to the context.

    For a fetched (remote) context a relative path means a file inside the context first, so
    ``--dockerfile Dockerfile`` with a git context reads the repository's Dockerfile.
    The path is returned as named; inside the context, read it through ``within_context``.
    """
    if dockerfile is None:
        return root / DEFAULT_DOCKERFILE
    if dockerfile.is_absolute():
        return dockerfile
    if remote and within_context(root, root / dockerfile).exists():
        return root / dockerfile
    if workdir is not None and within_context(root, workdir / dockerfile).exists():
        return workdir / dockerfile
    return root / dockerfile


def _local(
    root: Path, dockerfile: Path | None, workdir: Path | None, *, remote: bool = False
) -> LocalContext:
    real_root = Path(os.path.realpath(root))  # within_context compares paths under it
    located = _locate_dockerfile(real_root, dockerfile, workdir, remote=remote)
    ignore_file = find_ignore_file(real_root, located)
    ignore = (
        IgnoreMatcher.from_file(within_context(real_root, ignore_file), name=str(ignore_file))
        if ignore_file
        else IgnoreMatcher()
    )
    return LocalContext(real_root, ignore, located, ignore_file)


def _existing_dir(path: Path, spec: str) -> Path:
    if not path.exists():
        raise ContextError(f"build context {path} does not exist", hint=f"context was {spec!r}")
    if not path.is_dir():
        raise ContextError(
            f"build context {path} is not a directory",
            hint="use tar://PATH for a tar archive",
        )
    return path


def _sub_root(root: Path, sub_paths: tuple[str | None, ...], spec: str) -> Path:
    """Narrow ``root`` to the sub-directories named (``#ref:subdir``, ``--context-sub-path``)."""
    for sub in sub_paths:
        if not sub or sub.strip("/") in ("", "."):
            continue
        real_root = Path(os.path.realpath(root))
        candidate = scoped_resolve(real_root, sub)
        if not candidate.is_dir():
            raise ContextError(
                f"context sub-path {sub!r} is not a directory in the build context",
                hint=f"context was {redact_url(spec)!r}",
            )
        root = candidate
    return root


Fetch = Callable[[Path], None]


def _fetched(
    fill: Fetch,
    spec: str,
    dockerfile: Path | None,
    workdir: Path | None,
    sub_paths: tuple[str | None, ...],
) -> WrappedContext:
    """Run ``fill(tree)`` to populate a fresh temporary directory, then open it as a context."""
    tempdir = Path(tempfile.mkdtemp(prefix="kiln-context-"))
    try:
        tree = tempdir / "context"
        tree.mkdir()
        fill(tree)
        root = _sub_root(tree, sub_paths, spec)
        local = _local(root, dockerfile, workdir, remote=True)
        return WrappedContext(local, lambda: _force_rmtree(tempdir))
    except BaseException:
        _force_rmtree(tempdir)
        raise


def _archive(fetch: Fetch) -> Fetch:
    """A filler that fetches an archive next to the tree, extracts it and drops the archive."""

    def fill(tree: Path) -> None:
        archive = tree.parent / "context.archive"
        fetch(archive)
        extract_tar(archive, tree)
        archive.unlink()

    return fill


def _local_archive(archive: Path) -> Fetch:
    """A filler that extracts the user's archive file in place (no copy)."""

    def fill(tree: Path) -> None:
        if not archive.is_file():
            raise ContextError(f"build context archive {archive} does not exist")
        extract_tar(archive, tree)

    return fill


def _remote_filler(
    spec: str, scheme: str, rest: str, base: Path, git: GitOptions, stdin: BinaryIO | None
) -> Fetch:
    """Pick how to fetch a non-directory context; ContextError for unknown schemes."""
    if spec in STDIN_SPECS:
        return _archive(lambda dest: download.copy_stdin(dest, stdin))
    if scheme == "tar":
        return _local_archive(base / rest)
    if is_git_spec(spec):
        source = parse_git_spec(spec)
        return lambda tree: clone_git_context(source, git, tree)
    if scheme in ("http", "https"):
        if download.is_azure_blob_url(spec):
            return _archive(lambda dest: download.download_azure(spec, dest))
        return _archive(lambda dest: download.download_url(spec, dest))
    if scheme == "s3":
        return _archive(lambda dest: download.download_s3(spec, dest))
    if scheme == "gs":
        return _archive(lambda dest: download.download_gcs(spec, dest))
    raise ContextError(
        f"build context scheme {scheme}:// is not supported ({redact_url(spec)})",
        hint="use a directory, dir://, tar://, git://, http(s)://, s3:// or gs://",
    )


def open_context(
    spec: str,
    dockerfile: Path | None = None,
    workdir: Path | None = None,
    *,
    sub_path: str | None = None,
    git: GitOptions | None = None,
    stdin: BinaryIO | None = None,
) -> BuildContext:
    """Open the context named by ``spec`` and load its ignore rules.

    ``dockerfile`` (optional) decides which ignore file applies (see ``find_ignore_file``);
    relative paths in ``spec`` and ``dockerfile`` are taken from ``workdir`` (default: cwd).
    ``sub_path`` narrows the context to a directory inside it; ``git`` carries ``--git``
    settings; ``stdin`` replaces standard input for ``-``/``tar://stdin`` (tests, the API).
    Raises ContextError for a missing context, a failed fetch or an unsupported scheme.
    """
    base = workdir if workdir is not None else Path.cwd()
    match = _SCHEME.match(spec)
    scheme, rest = (match.group(1).lower(), match.group(2)) if match else ("dir", spec)
    if scheme == "dir" and spec not in STDIN_SPECS and not is_git_spec(spec):
        root = _sub_root(_existing_dir(base / rest, spec), (sub_path,), spec)
        return _local(root, dockerfile, base)
    fill = _remote_filler(spec, scheme, rest, base, git or GitOptions(), stdin)
    subdir = parse_git_spec(spec).subdir if is_git_spec(spec) else None
    return _fetched(fill, spec, dockerfile, base, (subdir, sub_path))
