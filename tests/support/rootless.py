"""A real non-root user for rootless tests, and a kiln that user can import.

Why a copy of kiln: this machine's interpreter lives under /root (mode 0700), which other users
cannot enter. The rootless tests therefore run Debian's /usr/bin/python3 (the same 3.11) with
``PYTHONPATH`` pointing at a world-readable copy of kiln's sources and of its runtime
dependencies, taken from the running interpreter.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

import kiln

SYSTEM_PYTHON = Path("/usr/bin/python3")


def portable_kiln(dest: Path) -> Path:
    """Copy kiln and its runtime dependencies to ``dest`` (world-readable); return ``dest``."""
    source = Path(kiln.__file__ or "").parent
    shutil.copytree(source, dest / "kiln", ignore=shutil.ignore_patterns("__pycache__"))
    for dist in _runtime_distributions():
        for file in dist.files or ():
            if ".." in file.parts or "__pycache__" in file.parts:
                continue  # scripts outside site-packages; caches
            target = dest / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(str(dist.locate_file(file))), target)
    subprocess.run(["chmod", "-R", "a+rX", str(dest)], check=True)
    return dest


def _runtime_distributions() -> list[metadata.Distribution]:
    """The installed distributions kiln needs at run time (pyproject.toml's, recursively)."""
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    found: dict[str, metadata.Distribution] = {}
    pending = list(project["project"]["dependencies"])
    while pending:
        requirement = pending.pop()
        if "extra ==" in requirement:
            continue
        name = re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0].lower()
        if name not in found:
            found[name] = metadata.distribution(name)
            pending.extend(metadata.requires(name) or [])
    return list(found.values())


def system_python_matches() -> bool:
    """The copied packages (some compiled) need the same Python minor version."""
    if not SYSTEM_PYTHON.exists():
        return False
    out = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return out == str(tuple(sys.version_info[:2]))


@contextmanager
def shared_kiln(prefix: str) -> Iterator[Path]:
    """A directory every user can read (pytest's tmp_path is private to root), holding under
    ``py/`` a copy of kiln a rootless user can import; removed afterwards."""
    if os.geteuid() != 0 or not system_python_matches():
        pytest.fail("rootless tests need root (to create users) and /usr/bin/python3 == this one")
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        path.chmod(0o755)
        portable_kiln(path / "py")
        yield path
    finally:
        subprocess.run(["rm", "-rf", str(path)], check=False)


@dataclass(frozen=True)
class RootlessUser:
    """A throwaway login created with ``useradd``."""

    name: str
    uid: int
    gid: int
    home: Path

    def command(self, *argv: str) -> list[str]:
        """``argv`` run as this user with a clean login-like environment."""
        return [
            "runuser", "-u", self.name, "--",
            "env", "-i", f"HOME={self.home}", f"USER={self.name}",
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", *argv,
        ]  # fmt: skip

    def run_kiln(self, shared: Path, work: Path, *args: str) -> subprocess.CompletedProcess[str]:
        """``kiln ARGS --work-dir WORK`` as this user, importing the copy of kiln that
        ``shared_kiln`` made in ``shared``; ``work`` is created, owned by the user."""
        work.mkdir()
        os.chown(work, self.uid, self.gid)
        return subprocess.run(
            self.command(
                f"PYTHONPATH={shared / 'py'}", str(SYSTEM_PYTHON), "-m", "kiln.cli.main",
                *args, "--work-dir", str(work),
            ),
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip


@contextmanager
def rootless_user(*, subordinate_ids: bool) -> Iterator[RootlessUser]:
    """Create a user (with a 65536-id range in /etc/subuid and /etc/subgid, or none)."""
    name = f"kilnrl{secrets.token_hex(3)}"
    subprocess.run(["useradd", "-m", "-s", "/bin/sh", name], check=True, capture_output=True)
    try:
        _set_subordinate_ids(name, subordinate_ids)
        ids = subprocess.run(["id", "-u", name], capture_output=True, text=True, check=True)
        gid = subprocess.run(["id", "-g", name], capture_output=True, text=True, check=True)
        yield RootlessUser(name, int(ids.stdout), int(gid.stdout), Path("/home") / name)
    finally:
        subprocess.run(["userdel", "-r", "-f", name], capture_output=True, check=False)
        _set_subordinate_ids(name, False)


def _set_subordinate_ids(name: str, wanted: bool) -> None:
    for path in (Path("/etc/subuid"), Path("/etc/subgid")):
        lines = path.read_text().splitlines() if path.exists() else []
        kept = [line for line in lines if not line.startswith(f"{name}:")]
        if wanted:
            kept.append(f"{name}:{_free_range(lines)}:65536")
        path.write_text("".join(f"{line}\n" for line in kept))


def _free_range(lines: list[str]) -> int:
    ends = [int(f[1]) + int(f[2]) for f in (line.split(":") for line in lines) if len(f) == 3]
    return max([100000, *ends])
