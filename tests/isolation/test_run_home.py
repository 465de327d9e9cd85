"""``HOME`` in RUN, as runc sets it, in every isolation (issue 10.1).

runc gives a process whose environment has no ``HOME`` the home directory of its user's passwd
entry (``/`` for a uid without one); an ``ENV HOME`` wins. Judged from the pushed image, which
records what each step saw, and by a non-root user writing into ``$HOME``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kiln.builder.executor import with_home
from tests.isolation.test_rootless import shared_dir
from tests.support.registry_server import RegistryServer
from tests.support.rootless import rootless_user
from tests.support.tools import run_kiln, umoci_unpack

pytestmark = pytest.mark.root

__all__ = ["shared_dir"]  # the rootless tests' world-readable copy of kiln, as a fixture

DOCKERFILE = """
    FROM {base}
    RUN echo "$HOME" > /tmp/home-root && chown app /home/app
    USER app
    RUN echo "$HOME" > /tmp/home-app && echo written > "$HOME/x"
    USER nobody
    RUN echo "$HOME" > /tmp/home-nobody
    USER 4242
    RUN echo "$HOME" > /tmp/home-4242
    USER root
    ENV HOME=/custom
    RUN echo "$HOME" > /tmp/home-env
"""

EXPECTED = {
    "home-root": "/root\n",
    "home-app": "/home/app\n",
    "home-nobody": "/nonexistent\n",
    "home-4242": "/\n",
    "home-env": "/custom\n",
}


def _context(parent: Path, base: str) -> Path:
    context = parent / "ctx"
    context.mkdir()
    context.chmod(0o755)
    (context / "Dockerfile").write_text(textwrap.dedent(DOCKERFILE.format(base=base)))
    return context


def _check(ref: str, workdir: Path) -> None:
    rootfs = umoci_unpack(ref, workdir)
    seen = {name: (rootfs / "tmp" / name).read_text() for name in EXPECTED}
    assert seen == EXPECTED
    assert (rootfs / "home" / "app" / "x").read_text() == "written\n"


@pytest.mark.parametrize("isolation", ["namespaces", "chroot"])
def test_home_as_runc_sets_it(
    isolation: str, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    ref = f"{registry.host}/home/{isolation}:1"
    result = run_kiln(
        "build", "-t", ref, "--isolation", isolation, "--insecure-registry", registry.host,
        "--work-dir", str(tmp_path / "work"), str(_context(tmp_path, base_image)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    _check(ref, tmp_path / "unpacked")


def test_home_rootless(
    shared_dir: Path, registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    shared = shared_dir / "home"
    shared.mkdir()
    ref = f"{registry.host}/home/rootless:1"
    with rootless_user(subordinate_ids=True) as user:
        result = user.run_kiln(
            shared_dir, shared / "work", "build", "-t", ref,
            "--insecure-registry", registry.host, str(_context(shared, base_image)),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Isolation: namespaces (rootless" in result.stderr
    _check(ref, tmp_path / "unpacked")


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ((), ("HOME=/h",)),
        (("A=1", "HOME="), ("A=1", "HOME=/h")),
        (("HOME=/set",), ("HOME=/set",)),
    ],
)
def test_with_home_only_fills_a_missing_or_empty_home(
    env: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert with_home(env, lambda: "/h") == expected
