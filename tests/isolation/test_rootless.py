"""Rootless builds: a real non-root user runs `kiln build`; layers record in-container owners."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry_server import RegistryServer
from tests.support.rootless import RootlessUser, rootless_user, shared_kiln
from tests.support.tools import umoci_unpack

pytestmark = pytest.mark.root

DOCKERFILE = """
    FROM {base}
    COPY file.txt /copied.txt
    RUN id > /id.txt && touch /file && (chown 1234:5678 /file || echo failed > /chown-failed)
"""


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A directory every user can read, with a copy of kiln the rootless user can import."""
    with shared_kiln("kiln-rootless-") as path:
        yield path


def _build(user: RootlessUser, shared: Path, registry: RegistryServer, base: str, ref: str) -> str:
    context = shared / f"ctx-{user.name}"
    context.mkdir()
    (context / "Dockerfile").write_text(textwrap.dedent(DOCKERFILE.format(base=base)))
    (context / "file.txt").write_text("copied\n")
    context.chmod(0o755)
    work = shared / f"work-{user.name}"
    result = user.run_kiln(
        shared, work, "build", "-t", ref, "--insecure-registry", registry.host, str(context)
    )
    assert result.returncode == 0, result.stderr
    assert list(work.iterdir()) == [], "the build left files behind"
    return result.stderr


@pytest.mark.parametrize("subordinate_ids", [True, False], ids=["subuid-ranges", "single-id"])
def test_rootless_build_records_in_container_owners(
    subordinate_ids: bool,
    registry: RegistryServer,
    base_image: str,
    shared_dir: Path,
    tmp_path: Path,
) -> None:
    ref = f"{registry.host}/rootless/{'ranges' if subordinate_ids else 'single'}:1"
    with rootless_user(subordinate_ids=subordinate_ids) as user:
        log = _build(user, shared_dir, registry, base_image, ref)
    assert "Isolation: namespaces (rootless" in log
    rootfs = umoci_unpack(ref, tmp_path / "unpacked")
    copied = os.lstat(rootfs / "copied.txt")
    assert (copied.st_uid, copied.st_gid) == (0, 0)
    assert (rootfs / "id.txt").read_text().startswith("uid=0(root) gid=0(root)")
    chowned = os.lstat(rootfs / "file")
    if subordinate_ids:
        assert (chowned.st_uid, chowned.st_gid) == (1234, 5678)
        assert not (rootfs / "chown-failed").exists()
    else:  # only the user's own id exists in the namespace (documented limitation)
        assert (chowned.st_uid, chowned.st_gid) == (0, 0)
        assert (rootfs / "chown-failed").exists()
