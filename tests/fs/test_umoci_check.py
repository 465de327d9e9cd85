"""Independent check: umoci unpacks kiln-written layers (whiteouts included) as kiln does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

from kiln.fs import (
    BlobStore,
    Changes,
    LayerInfo,
    WalkSnapshotter,
    apply_layer,
    open_layer,
    write_layer,
)

pytestmark = pytest.mark.skipif(shutil.which("umoci") is None, reason="needs umoci")

LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def put_json(store: BlobStore, doc: Mapping[str, object]) -> tuple[str, int]:
    data = json.dumps(doc).encode()
    with store.writer() as w:
        w.write(data)
    assert w.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    return w.digest, len(data)


def write_layout(layout: Path, layers: list[LayerInfo]) -> None:
    store = BlobStore(layout)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "config": {},
    }
    config_digest, config_size = put_json(store, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {"mediaType": LAYER_GZIP, "digest": layer.digest, "size": layer.size}
            for layer in layers
        ],
    }
    manifest_digest, manifest_size = put_json(store, manifest)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "test"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


def tree(root: Path) -> dict[str, tuple[int, bytes]]:
    """path -> (mode, content or link target) for everything below root."""
    result: dict[str, tuple[int, bytes]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            if path.is_symlink():
                body = os.readlink(path).encode()
            elif path.is_file():
                body = path.read_bytes()
            else:
                body = b""
            result[path.relative_to(root).as_posix()] = (st.st_mode, body)
    return result


def test_umoci_agrees_with_apply_layer(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "etc" / "app").mkdir(parents=True)
    (src / "etc" / "app" / "a.conf").write_text("a")
    (src / "etc" / "app" / "b.conf").write_text("b")
    (src / "bin").mkdir()
    (src / "bin" / "tool").write_text("#!/bin/sh\necho hi\n")
    (src / "bin" / "tool").chmod(0o755)
    os.symlink("tool", src / "bin" / "t")
    (src / "etc" / "app" / "random.bin").write_bytes(os.urandom(1_500_000))  # stored blocks
    layout = tmp_path / "layout"
    store = BlobStore(layout)
    base = write_layer(
        src,
        Changes(("bin/t", "bin/tool", "etc/app/a.conf", "etc/app/b.conf", "etc/app/random.bin")),
        tmp_path / "l1",
    )
    snap = WalkSnapshotter(src)
    snap.baseline()
    (src / "etc" / "app" / "a.conf").unlink()
    shutil.rmtree(src / "bin")
    (src / "bin").write_text("now a file")
    (src / "etc" / "app" / "c.conf").write_text("c")
    diff = write_layer(src, snap.changes(), tmp_path / "l2")
    for info, path in ((base, tmp_path / "l1"), (diff, tmp_path / "l2")):
        store.add_file(path, info.digest)
    write_layout(layout, [base, diff])

    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:test", str(bundle)],
        check=True,
        capture_output=True,
    )
    ours = tmp_path / "ours"
    ours.mkdir()
    for info in (base, diff):
        with open_layer(store.path(info.digest)) as stream:
            apply_layer(stream, ours)
    assert tree(ours) == tree(bundle / "rootfs")
    assert (ours / "bin").read_text() == "now a file"
    assert sorted(p.name for p in (ours / "etc" / "app").iterdir()) == [
        "b.conf",
        "c.conf",
        "random.bin",
    ]
