"""Set builders' old state aside during a benchmark and delete it only when measuring is over.

Why: this machine's root filesystem is ext4 without a journal, where the inode allocator skips
inodes deleted in the last minute or more (``recently_deleted`` in ext4's ialloc.c) by scanning
past them one by one. Deleting a 150,000-file store right before a build made that build's file
creation several times slower (GNU ``tar -x`` of the many-files layer: 1.5 s on tmpfs, 46 s on
ext4 just after a big ``rm -rf``), so whichever builder ran after a reset paid for the previous
builder's deletions. Renaming costs nothing and deletes no inode; the trash is emptied after the
last measurement (and a leftover trash from an interrupted run is emptied before the first one,
followed by a pause so its deletions stop mattering).
"""

from __future__ import annotations

import itertools
import os
import subprocess
import time
from pathlib import Path

#: ext4 skips inodes deleted less than 60 s ago, or 360 s while their inode table block is still
#: dirty; with the default 30 s dirty expiry the blocks are written back well within two minutes.
SETTLE_SECONDS = 120


class Trash:
    """A directory that old state is renamed into; ``empty()`` deletes it all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._names = itertools.count()

    def settle_leftovers(self) -> None:
        """Delete what an interrupted run left behind, then wait until ext4 forgets it."""
        if self.root.exists() and any(self.root.iterdir()):
            print(f"emptying a leftover {self.root}, then waiting {SETTLE_SECONDS} s", flush=True)
            self.empty()
            time.sleep(SETTLE_SECONDS)

    def discard(self, path: Path) -> None:
        """Move ``path`` (if it exists) out of the way; nothing is deleted yet."""
        if not path.exists() and not path.is_symlink():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        os.rename(path, self.root / f"{next(self._names)}-{path.name}")

    def empty(self) -> None:
        """Unmount anything still mounted inside the trash, then delete it."""
        if not self.root.exists():
            return
        prefix = str(self.root.resolve()) + "/"
        with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
            points = [line.split()[4] for line in mountinfo]
        for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True)
        subprocess.run(["rm", "-rf", str(self.root)], check=True)
