"""Start-up: `kiln build` starts the RUN sandbox before it loads itself, and loads it lazily.

Why: the fixed cost of a small build is mostly Python start-up and imports. The CLI module must
stay light so the sandbox fork server (a separate interpreter) boots while kiln imports the
builder and the registry client, and the fork server itself must import only the helpers it
runs. Neither `requests` nor `urllib3` is loaded at all (kiln.net is built on the standard
library's `http.client`), and `http.client` and `ssl` only once a request is made.
Timings are not asserted (they vary with the machine); what is imported is.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kiln.builder.prestart import isolation_if_building

SRC = Path(__file__).resolve().parents[2] / "src"


def _modules_after(code: str, *flags: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    script = f"{code}\nimport json, sys\nprint('\\n' + json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, *flags, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        cwd="/",
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def _modules_after_cli(*argv: str) -> set[str]:
    """The modules loaded after ``kiln ARGV`` ran to its end (its exit status ignored)."""
    code = (
        "import sys\n"
        f"sys.argv = ['kiln', *{list(argv)!r}]\n"
        "from kiln.cli.main import run\n"
        "try:\n    run()\nexcept SystemExit:\n    pass"
    )
    return _modules_after(code)


def test_the_cli_module_loads_neither_the_builder_nor_requests() -> None:
    loaded = _modules_after("import kiln.cli.main")
    for heavy in ("requests", "urllib3", "argparse", "kiln.builder.builder", "kiln.registry"):
        assert heavy not in loaded


def test_build_help_loads_no_third_party_http_stack() -> None:
    loaded = _modules_after_cli("build", "--help")
    assert not {"requests", "urllib3", "ssl", "http.client"} & loaded


def test_a_build_loads_no_third_party_http_stack(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY a /a\n")
    (context / "a").write_text("a\n")
    out = tmp_path / "image.tar"
    loaded = _modules_after_cli(
        "build", "--no-push", "--isolation", "chroot", "--tar-path", str(out), str(context)
    )
    assert out.exists()
    assert "kiln.builder.builder" in loaded and "kiln.net.session" in loaded
    assert not {"requests", "urllib3", "ssl", "http.client"} & loaded


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
