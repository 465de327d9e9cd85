"""Both snapshotters must build the same image, file for file; overlay mounts never leak.

The base image gets an extra layer (made with umoci from a directory holding user xattrs,
hardlinks, a tree to delete and a directory to make opaque), then one Dockerfile exercises
deletions, renames over existing files, directory renames, opaque directories, hardlinks, xattrs
carried through copy-up, COPY, WORKDIR and a no-op RUN. The images are unpacked with umoci and
compared entry by entry (type, mode, owner, content, link target, xattrs, hardlink groups).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.support.base_image import push_layout
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = [pytest.mark.registry, pytest.mark.root]

DOCKERFILE = """\
FROM {base}
RUN rm /data/del.txt && rm -rf /data/gone
RUN echo replaced > /data/new.txt && mv /data/new.txt /data/keep.txt && mv /data/tree /data/tree2
RUN rm -rf /data/opq && mkdir /data/opq && echo fresh > /data/opq/only
RUN ln /data/xattr.txt /data/xattr-link && echo more >> /data/xattr.txt && chmod 600 /data/mode.txt
RUN mkdir -p /deep/a/b && ln -s ../x /deep/a/b/sym && echo f > /deep/a/b/f && ln /deep/a/b/f /deep/g
COPY ctx/ /data/opq/
WORKDIR /work/dir
RUN true
RUN rm -rf /deep/a && mkdir -p /deep/a/b2 && rm /data/hard2 && echo x > /data/tree2/sub/new
"""


def _base_layer(path: Path) -> Path:
    """A layer tar with /data: files to delete and rename, xattrs, hardlinks, an opaque-to-be dir.

    Written with tarfile because umoci 0.4.7's ``insert`` truncates layers ending in a file
    with xattrs.
    """
    entries: list[tuple[str, bytes | None, dict[str, str]]] = [
        ("data/", None, {}),
        ("data/del.txt", b"base del\n", {}),
        ("data/gone/", None, {}),
        ("data/gone/inner/", None, {}),
        ("data/gone/inner/f", b"base gone\n", {}),
        ("data/hard1", b"linked\n", {}),
        ("data/keep.txt", b"base keep\n", {}),
        ("data/mode.txt", b"base mode\n", {}),
        ("data/opq/", None, {"SCHILY.xattr.user.kiln.dir": "dir-value"}),
        ("data/opq/old/", None, {}),
        ("data/opq/old/f", b"base opq\n", {}),
        ("data/tree/", None, {}),
        ("data/tree/sub/", None, {}),
        ("data/tree/sub/f", b"base tree\n", {}),
        ("data/xattr.txt", b"has xattrs\n", {"SCHILY.xattr.user.kiln.test": "value-1"}),
    ]
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, content, pax in entries:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.mtime, info.pax_headers = 1_600_000_000, pax
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
        link = tarfile.TarInfo("data/hard2")
        link.type, link.linkname, link.mode = tarfile.LNKTYPE, "data/hard1", 0o644
        tar.addfile(link)
    return path


@pytest.fixture(scope="module")
def xattr_base(
    registry: RegistryServer, busybox_layout: Path, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """busybox plus a /data layer with xattrs and hardlinks, pushed to the test registry."""
    work = tmp_path_factory.mktemp("xbase")
    layout = work / "oci"
    shutil.copytree(busybox_layout, layout, symlinks=True)
    subprocess.run(
        ["umoci", "raw", "add-layer", "--image", f"{layout}:latest", str(_base_layer(work / "l"))],
        check=True,
        capture_output=True,
    )
    ref = f"{registry.host}/base/xattrs:latest"
    push_layout(layout, "latest", ref)
    return ref


def _build(registry: RegistryServer, context: Path, out: Path, snapshotter: str) -> Path:
    result = run_kiln(
        "build", "--no-push", "--oci-layout-path", str(out / "oci"), "--image-format", "oci",
        "--insecure-registry", registry.host, "--snapshotter", snapshotter,
        "--work-dir", str(out / "work"), "-v", "debug", str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"Snapshotter: {snapshotter}" in result.stderr or snapshotter == "walk"
    bundle = out / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{out / 'oci'}:latest", str(bundle)],
        check=True,
        capture_output=True,
    )
    return bundle / "rootfs"


def _describe(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path's type, mode, owner, content digest or link target, xattrs, link group."""
    out: dict[str, tuple[object, ...]] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            content: object = None
            if stat.S_ISREG(st.st_mode):
                content = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            xattrs = tuple(
                sorted(
                    (n, os.getxattr(path, n, follow_symlinks=False))
                    for n in os.listxattr(path, follow_symlinks=False)
                    if n.startswith("user.")
                )
            )
            group = inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 else None
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, content, xattrs, group)
    return out


def _layer_count(layout: Path) -> int:
    import json

    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return len(manifest["layers"])


def test_overlay_and_walk_build_the_same_image(
    registry: RegistryServer, xattr_base: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    (context / "ctx").mkdir(parents=True)
    (context / "Dockerfile").write_text(DOCKERFILE.format(base=xattr_base))
    (context / "ctx" / "copied").write_text("from the context\n")

    overlay = _describe(_build(registry, context, tmp_path / "overlay", "overlay"))
    walk = _describe(_build(registry, context, tmp_path / "walk", "walk"))

    assert overlay == walk
    # The cases really happened (so equality is not two identical failures).
    assert "data/del.txt" not in walk and "data/gone" not in walk and "data/tree" not in walk
    assert walk["data/keep.txt"][3] == hashlib.sha256(b"replaced\n").hexdigest()
    assert sorted(p for p in walk if p.startswith("data/opq/")) == [
        "data/opq/copied",
        "data/opq/only",
    ]
    assert walk["data/xattr.txt"][4] == (("user.kiln.test", b"value-1"),)
    assert walk["data/xattr-link"][5] == walk["data/xattr.txt"][5] is not None
    assert walk["deep/g"][3] == hashlib.sha256(b"f\n").hexdigest()
    assert walk["data/mode.txt"][0] & 0o777 == 0o600
    assert "deep/a/b2" in walk and "deep/a/b" not in walk and "data/hard2" not in walk
    assert walk["data/hard1"][5] is None  # its only other link was deleted
    assert "data/tree2/sub/new" in walk
    assert _layer_count(tmp_path / "overlay" / "oci") == _layer_count(tmp_path / "walk" / "oci")


def test_failed_build_leaves_no_mount_behind(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN echo one > /one\nRUN echo two > /two && exit 3\n"
    )
    work = tmp_path / "work"
    result = run_kiln(
        "build", "--no-push", "--snapshotter", "overlay", "--work-dir", str(work),
        "--insecure-registry", registry.host, str(context),
    )  # fmt: skip
    assert result.returncode != 0
    assert "exit code: 3" in result.stderr
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(work) not in mounts
    assert list(work.iterdir()) == []
