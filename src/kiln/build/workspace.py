"""Where a build keeps its files: the blob store, one rootfs per stage, scratch space.

Why a separate object: a build must leave nothing behind but its outputs (and the cache dir the
user asked for), also when it fails. The workspace is a context manager that removes what it made.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import TracebackType

from kiln.fs import BlobStore, remove_tree


class Workspace:
    """Temporary directories for one build, and the (possibly persistent) blob store."""

    def __init__(self, work_dir: Path | None, cache_dir: Path | None) -> None:
        parent = work_dir or Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="kiln-", dir=parent))
        store_root = cache_dir if cache_dir is not None else self.root / "cache"
        store_root.mkdir(parents=True, exist_ok=True)
        self.store = BlobStore(store_root)
        self.scratch = self.root / "scratch"
        self.scratch.mkdir()
        self._rootfs: list[Path] = []

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

    def __enter__(self) -> Workspace:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        remove_tree(self.root, ignore_errors=True)
