"""A final COPY writes its layer straight from the sources: the layer must be the one a real copy
makes.

The same COPY is built twice per snapshotter and flag set: as the image's last file step (its new
regular files are never created in the rootfs, ``CopyJob.defer_files``) and followed by a
``RUN true`` (a real copy). The COPY layers are compared entry by entry: name, type, mode, owner,
size, content, link target, xattrs, and the mtime of everything but directories (a real copy
bumps a directory's mtime when it creates files in it afterwards).
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = [pytest.mark.registry, pytest.mark.root]

Entry = tuple[object, ...]


def _context(root: Path) -> Path:
    src = root / "ctx"
    (src / "etc").mkdir(parents=True)
    (src / "data" / "nested" / "deeper").mkdir(parents=True)
    (src / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")  # replaces the base's
    (src / "etc" / "added.conf").write_text("new\n")
    (src / "data" / "plain.txt").write_text("plain\n")
    (src / "data" / "nested" / "deeper" / "f").write_bytes(os.urandom(5000))
    tool = src / "data" / "tool"
    tool.write_text("#!/bin/sh\n")
    os.chmod(tool, 0o4755)
    secret = src / "data" / "secret"
    secret.write_text("s\n")
    os.chmod(secret, 0o600)
    os.setxattr(secret, "user.kiln.secret", b"deferred too")
    os.setxattr(src / "data" / "plain.txt", "user.kiln.note", b"carried")
    os.link(src / "data" / "plain.txt", src / "data" / "plain-link")
    os.symlink("plain.txt", src / "data" / "sym")
    os.utime(src / "data" / "nested" / "deeper" / "f", (1_500_000_000, 1_500_000_000))
    return root


def _copy_layer(layout: Path, from_end: int) -> dict[str, Entry]:
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())
    digest = manifest["layers"][-from_end]["digest"].split(":", 1)[1]
    entries: dict[str, Entry] = {}
    with tarfile.open(layout / "blobs" / "sha256" / digest, "r:*") as tar:
        for info in tar:
            data = tar.extractfile(info) if info.isreg() else None
            content = hashlib.sha256(data.read()).hexdigest() if data else None
            xattrs = tuple(sorted((k, v) for k, v in info.pax_headers.items() if "xattr" in k))
            mtime = None if info.isdir() else info.mtime
            entries[info.name] = (
                info.type, info.mode, info.uid, info.gid, info.size, content, info.linkname,
                xattrs, mtime,
            )  # fmt: skip
    return entries


def _build(registry: RegistryServer, context: Path, out: Path, snapshotter: str) -> str:
    result = run_kiln(
        "build", "--no-push", "--oci-layout-path", str(out), "--insecure-registry", registry.host,
        "--snapshotter", snapshotter, "--work-dir", str(out.parent / "work"), "-v", "debug",
        str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


@pytest.mark.parametrize("snapshotter", ["overlay", "walk"])
@pytest.mark.parametrize("flags", ["", "--chown=7:8", "--chmod=640"])
def test_final_copy_layer_equals_a_real_copy(
    registry: RegistryServer, base_image: str, tmp_path: Path, snapshotter: str, flags: str
) -> None:
    context = _context(tmp_path / "context")
    copy = f"COPY {flags} ctx/ /\n"
    (context / "Dockerfile").write_text(f'FROM {base_image}\n{copy}CMD ["sh"]\n')
    (context / "Dockerfile.real").write_text(f"FROM {base_image}\n{copy}RUN true\n")
    deferred_log = _build(registry, context, tmp_path / "deferred" / "oci", snapshotter)
    (context / "Dockerfile").write_text((context / "Dockerfile.real").read_text())
    real_log = _build(registry, context, tmp_path / "real" / "oci", snapshotter)

    deferred = _copy_layer(tmp_path / "deferred" / "oci", 1)
    real = _copy_layer(tmp_path / "real" / "oci", 2)
    assert deferred == real
    # The deferral really happened, for the new regular files only (not the replaced passwd,
    # not the hard-linked pair), and the layers hold what was asked for.
    assert "COPY: 4 files go into the layer from their sources" in deferred_log
    assert "go into the layer from their sources" not in real_log
    assert real["etc/passwd"][5] == hashlib.sha256(b"root:x:0:0:root:/root:/bin/sh\n").hexdigest()
    assert real["data/plain-link"][0] == tarfile.REGTYPE  # the first name of the pair ...
    assert real["data/plain.txt"][0] == tarfile.LNKTYPE  # ... and the link to it
    assert real["data/sym"][6] == "plain.txt"
    assert real["data/plain-link"][7] == (("SCHILY.xattr.user.kiln.note", "carried"),)
    assert real["data/secret"][7] == (("SCHILY.xattr.user.kiln.secret", "deferred too"),)
    assert real["data/nested/deeper/f"][8] == 1_500_000_000
    if flags == "--chown=7:8":
        assert real["data/tool"][2:4] == (7, 8)
    elif flags == "--chmod=640":
        assert real["data/tool"][1] == 0o640
    else:
        assert real["data/tool"][1] == 0o4755 and real["data/secret"][1] == 0o600
