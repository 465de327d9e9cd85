"""Files a RUN step needs but must not leave in its layer (heredoc scripts with a shebang).

Why a context manager: the files must exist while the command runs, be invisible to the snapshot,
and be gone afterwards without the rootfs's top directory looking modified to the next snapshot.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import TracebackType

from kiln.builder.effects import RUN_FILES_DIR


class RunFiles:
    """Writes (name, content) pairs executable under RUN_FILES_DIR; removes them on exit."""

    excluded = RUN_FILES_DIR.lstrip("/")

    def __init__(self, rootfs: Path, files: tuple[tuple[str, str], ...]) -> None:
        self.rootfs = rootfs
        self.files = files
        self.directory = rootfs / self.excluded
        self._root_times: tuple[int, int] | None = None

    def __enter__(self) -> RunFiles:
        if not self.files:
            return self
        st = os.stat(self.rootfs)
        self._root_times = (st.st_atime_ns, st.st_mtime_ns)
        self.directory.mkdir(mode=0o755, exist_ok=True)
        for name, content in self.files:
            path = self.directory / name
            path.write_text(content)
            path.chmod(0o755)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._root_times is None:
            return
        shutil.rmtree(self.directory, ignore_errors=True)
        os.utime(self.rootfs, ns=self._root_times)
