"""Where a build keeps its files: the blob store, one rootfs per stage, scratch space.

Why a separate object: a build must leave nothing behind but its outputs (and the cache dir the
user asked for), also when it fails. The workspace is a context manager that removes what it made.
It also knows which directories are kiln's own (`own_dirs`), so the build never reads them as
context (`own_dirs.without_own_dirs`), and it never falls back to the current directory for its
files, as Python's `tempfile` does when no temporary directory is usable: that directory is often
the build context (issue 10.16: kiln's executor image had no /tmp and its work dir is /workspace).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from kiln.closeable import Closeable
from kiln.errors import BuildError, Remedy
from kiln.fs import BlobStore, remove_tree
from kiln.sandbox.userns import current_mapping

#: Where Python's `tempfile` looks after $TMPDIR, $TEMP and $TMP (before the current directory).
_SYSTEM_TEMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")


def default_parent() -> Path:
    """The temporary directory kiln works in when not given `--work-dir`.

    Raises BuildError instead of using the current directory (Python's last resort) or
    failing with a traceback ("No usable temporary directory"), e.g. as a non-root user in an
    image without a writable /tmp.
    """
    tried = [os.environ[name] for name in ("TMPDIR", "TEMP", "TMP") if os.environ.get(name)]
    tried += _SYSTEM_TEMP_DIRS
    try:
        found = tempfile.gettempdir()
    except FileNotFoundError:
        found = None
    cwd = os.getcwd()
    if found is None or (
        os.path.realpath(found) == os.path.realpath(cwd)
        and not any(os.path.realpath(t) == os.path.realpath(cwd) for t in tried)
    ):
        mapping = current_mapping()
        who = f"uid {os.geteuid()}" + (f" in a user namespace ({mapping})" if mapping else "")
        raise BuildError(
            f"no usable temporary directory for kiln's work dir (tried {', '.join(tried)}; "
            f"{who} needs to create files in one of them)",
            hint="point {0} at a writable directory outside the build context, set TMPDIR, or "
            "mount a writable volume (an emptyDir) at /tmp",
            remedies=[Remedy("work_dir")],
        )
    return Path(found)


class Workspace(Closeable):
    """Temporary directories for one build, and the (possibly persistent) blob store."""

    def __init__(self, work_dir: Path | None, cache_dir: Path | None) -> None:
        # Absolute from here on: layer paths are computed relative to the rootfs, and a relative
        # --work-dir ("disk") would not compare equal to the resolved paths below it.
        parent = (work_dir or default_parent()).absolute()
        cache_dir = cache_dir.absolute() if cache_dir is not None else None
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.root = Path(tempfile.mkdtemp(prefix="kiln-", dir=parent))
        except OSError as exc:
            raise BuildError(
                f"cannot create kiln's work dir in {parent}: {exc.strerror}",
                hint="point {0} at a directory kiln may write to",
                remedies=[Remedy("work_dir")],
            ) from exc
        self._given = (work_dir, cache_dir)
        store_root = cache_dir if cache_dir is not None else self.root / "cache"
        store_root.mkdir(parents=True, exist_ok=True)
        self.store = BlobStore(store_root)
        self.scratch = self.root / "scratch"
        self.scratch.mkdir()
        self._rootfs: list[Path] = []

    def own_dirs(self) -> Iterator[Path]:
        """kiln's own directories for this build: never part of the build context."""
        yield self.root
        for given in self._given:
            if given is not None:
                yield given

    def new_rootfs(self, label: str) -> Path:
        """A fresh, empty directory to unpack a stage's filesystem into."""
        path = self.root / f"rootfs-{len(self._rootfs) + 1}-{label}"
        path.mkdir(mode=0o755)
        self._rootfs.append(path)
        return path

    def remove_rootfs(self) -> None:
        """Delete the stages' directories now (they must be unmounted); the rest goes at exit."""
        for path in self._rootfs:
            remove_tree(path, ignore_errors=True)  # a COPY may have made it 1,000 deep

    def close(self) -> None:
        """Remove the whole workspace."""
        remove_tree(self.root, ignore_errors=True)
