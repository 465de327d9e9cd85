"""A named USER with no passwd entry: file operations (WORKDIR) fall back to 0:0 as BuildKit's
do; RUN still refuses it, naming the user and the line."""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.test_build_push_run import build, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, umoci_unpack


def test_workdir_and_copy_under_an_unknown_user_are_root_owned(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dockerfile = f"""
        FROM {base_image}
        USER nosuch
        WORKDIR /srv/app
        COPY f.txt ./
        USER app
        WORKDIR /srv/mine
    """
    context = write_context(tmp_path / "ctx", dockerfile, {"f.txt": "f\n"})
    ref = f"{registry.host}/user/unknown:1"
    build(registry, context, ref)
    rootfs = umoci_unpack(ref, tmp_path / "out")
    for path in ("srv", "srv/app", "srv/app/f.txt"):
        info = os.stat(rootfs / path)
        assert (info.st_uid, info.st_gid) == (0, 0), path
    mine = os.stat(rootfs / "srv/mine")  # a known name still owns what it creates
    assert (mine.st_uid, mine.st_gid) == (1000, 1000)


def test_run_as_an_unknown_user_fails_at_its_line(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dockerfile = f"""
        FROM {base_image}
        USER nosuch
        WORKDIR /srv/app
        RUN true
    """
    context = write_context(tmp_path / "ctx", dockerfile)
    result = run_kiln(
        "build",
        "--no-push",
        "--tar-path",
        str(tmp_path / "out.tar"),
        "--insecure-registry",
        registry.host,
        str(context),
    )
    assert result.returncode != 0
    assert "unable to find user nosuch: no matching entries in passwd file" in result.stderr
    assert f"{context / 'Dockerfile'}:4\n" in result.stderr
    assert ">>> RUN true" in result.stderr
