"""Start-up: `kiln build` starts the RUN sandbox before it loads itself, and loads it lazily.

Why: the fixed cost of a small build is mostly Python start-up and imports. The CLI module must
stay light so the sandbox fork server (a separate interpreter) boots while kiln imports the
builder and `requests`, and the fork server itself must import only the helpers it runs.
Timings are not asserted (they vary with the machine); what is imported is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.build.prestart import isolation_if_building

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules_after(code: str, *flags: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, *flags, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        cwd="/",
        check=True,
    )
    return set(json.loads(result.stdout))


def test_the_cli_module_loads_neither_the_builder_nor_requests() -> None:
    loaded = _modules_after("import kiln.cli.main")
    for heavy in ("requests", "urllib3", "argparse", "kiln.build.builder", "kiln.registry"):
        assert heavy not in loaded


def test_the_fork_server_loads_only_the_helpers_it_runs() -> None:
    # As it is started: no site-packages (-S), so `requests` could not even be found.
    loaded = _modules_after("import kiln.sandbox._forkserver", "-P", "-s", "-S")
    assert {"kiln.sandbox._init", "kiln.sandbox._chroot_init"} <= loaded
    for unused in ("kiln.sandbox.chroot", "kiln.sandbox.namespaces", "ctypes.util", "site"):
        assert unused not in loaded


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["build", "-t", "r/i", "."], "auto"),
        (["executor", "--isolation", "chroot", "--context", "dir://."], "chroot"),
        (["build", "--isolation=namespaces", "."], "namespaces"),
        (["build", "--isolation", "inplace", "--isolation", "auto", "."], "auto"),
        (["build", "--", "--isolation=chroot"], "auto"),
        (["build", "--help"], None),
        (["push", "out", "-d", "r/i"], None),
        (["--version"], None),
        ([], None),
    ],
)
def test_the_isolation_is_read_before_parsing(argv: list[str], expected: str | None) -> None:
    assert isolation_if_building(argv) == expected
