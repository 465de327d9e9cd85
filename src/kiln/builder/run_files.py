"""Files a RUN step needs but must not leave in its layer (heredoc scripts with a shebang).

Why a context manager: the files must exist while the command runs, be invisible to the snapshot,
and be gone afterwards without the rootfs's top directory looking modified to the next snapshot.
A generator rather than a ``Closeable``: entering does the work (writing the files), not only
leaving.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kiln.builder.effects import RUN_FILES_DIR

#: The rootfs-relative directory the files live in (to leave out of the step's snapshot).
EXCLUDED = RUN_FILES_DIR.lstrip("/")


@contextmanager
def run_files(rootfs: Path, files: tuple[tuple[str, str], ...]) -> Iterator[None]:
    """Write the (name, content) pairs executable under RUN_FILES_DIR for the block."""
    if not files:
        yield
        return
    st = os.stat(rootfs)
    directory = rootfs / EXCLUDED
    directory.mkdir(mode=0o755, exist_ok=True)
    try:
        for name, content in files:
            path = directory / name
            path.write_text(content)
            path.chmod(0o755)
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.utime(rootfs, ns=(st.st_atime_ns, st.st_mtime_ns))
