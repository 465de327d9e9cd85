"""A full disk during a build: one clear error naming the directory, and nothing left behind.

Why a real filesystem: ENOSPC comes from the kernel at whatever write crosses the limit; a
small tmpfs as `--work-dir` makes the layer write (or a COPY) hit it exactly as a full disk in a
CI pod would.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import kiln
from kiln.errors import ResourceError
from tests.registry_e2e.conftest import write_context
from tests.support.tools import run_kiln

pytestmark = pytest.mark.root


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs."""
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
        check=True,
        capture_output=True,
    )
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True, capture_output=True)


def _big_context(root: Path, dockerfile: str) -> Path:
    context = write_context(root, dockerfile)
    (context / "big").write_bytes(os.urandom(6 * 1024 * 1024))  # incompressible, > the disk
    return context


def test_layer_write_hits_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    # The final COPY's files go into the layer straight from the context: the layer blob is
    # the first (and only) large write into the work dir.
    context = _big_context(tmp_path / "ctx", "FROM scratch\nCOPY big /big\n")
    result = run_kiln("build", "--no-push", "--work-dir", str(small_disk), str(context))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ERRO")]
    assert len(lines) == 1, result.stderr  # one error, shown below its Dockerfile step
    assert lines[0].endswith("/ctx/Dockerfile:2"), result.stderr
    message = next(line for line in result.stderr.splitlines() if "no space left" in line)
    assert message.startswith("no space left on the device while writing a layer blob in ")
    assert str(small_disk) in message
    assert "hint: free space there, or point --work-dir at a larger filesystem" in (result.stderr)
    assert result.stdout == ""
    assert list(small_disk.iterdir()) == []  # the partial blob and the workspace are gone


def test_copy_into_the_rootfs_hits_a_full_disk(small_disk: Path, tmp_path: Path) -> None:
    context = _big_context(tmp_path / "ctx", "FROM scratch\nCOPY big /big\nCOPY Dockerfile /\n")
    result = run_kiln("build", "--no-push", "--work-dir", str(small_disk), str(context))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "no space left on the device while writing the files of step 1 (COPY)" in (result.stderr)
    assert list(small_disk.iterdir()) == []


def test_python_api_hint_names_the_keyword(small_disk: Path, tmp_path: Path) -> None:
    context = _big_context(tmp_path / "ctx", "FROM scratch\nCOPY big /big\n")
    with pytest.raises(ResourceError) as info:
        kiln.build_image(context, no_push=True, work_dir=small_disk)
    assert info.value.directory is not None and info.value.directory.startswith(str(small_disk))
    assert info.value.what == "a layer blob"
    assert "point work_dir=... at a larger filesystem" in str(info.value)
    assert "--work-dir" not in str(info.value)
