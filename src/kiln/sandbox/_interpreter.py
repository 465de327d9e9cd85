"""How kiln starts one of its own helper interpreters (fork server, user-namespace re-exec).

Why its own module: every helper must import the very kiln this process runs, whatever way kiln
was installed, and nothing else from the caller's environment (no working directory or user
site-packages on ``sys.path``, a fixed ``PATH``).
"""

from __future__ import annotations

import sys
from pathlib import Path

HELPER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def helper_command(module: str) -> list[str]:
    """``python -P -s -S -m MODULE``: no working directory and no site-packages on sys.path.

    The helpers use only the standard library and kiln (found through ``PYTHONPATH``, see
    `helper_env`), so ``-S`` also spares each start the ``site`` module and whatever the
    installation's ``.pth`` files import.
    """
    return [sys.executable, "-P", "-s", "-S", "-m", module]


def helper_env() -> dict[str, str]:
    """The helper imports the same kiln as this process, whatever way kiln was installed."""
    source_root = str(Path(__file__).resolve().parents[2])
    return {"PATH": HELPER_PATH, "PYTHONPATH": source_root, "LC_ALL": "C.UTF-8"}
