"""Layer chains the overlay snapshotter once got wrong: repeated layers, links in lower layers.

Issue 10.2: the same layer twice in a chain (two no-op RUNs give identical empty layers; base
images can list a layer twice) made the overlay mount fail with ELOOP. Issue 11.11: ``a -> DIR``
in one base layer and ``a/f`` in the next must put ``f`` into ``DIR`` (containerd's applier on
a whole rootfs, umoci and the walk snapshotter agree), not turn ``a`` into a directory. Each
case is built with both snapshotters; the results are unpacked with umoci and compared.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.e2e.test_snapshotters import _build, _describe
from tests.support.base_image import push_layout
from tests.support.registry_server import RegistryServer
from tests.support.tools import skopeo_inspect

pytestmark = [pytest.mark.registry, pytest.mark.root]


def _tar(path: Path, entries: list[tuple[str, str, bytes | str | None]]) -> Path:
    """A layer tar of (name, kind "d"/"f"/"l", content or link target)."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                tar.addfile(info)
            elif kind == "l":
                info.type, info.linkname = tarfile.SYMTYPE, str(data)
                tar.addfile(info)
            else:
                assert isinstance(data, bytes)
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return path


def _base_with_layers(
    registry: RegistryServer, busybox_layout: Path, work: Path, name: str, layers: list[Path]
) -> str:
    layout = work / "oci"
    shutil.copytree(busybox_layout, layout, symlinks=True)
    for layer in layers:
        subprocess.run(
            ["umoci", "raw", "add-layer", "--image", f"{layout}:latest", str(layer)],
            check=True,
            capture_output=True,
        )
    ref = f"{registry.host}/base/{name}:latest"
    push_layout(layout, "latest", ref)
    return ref


def _layers(layout: Path) -> list[str]:
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":", 1)[1]
    manifest = json.loads((layout / "blobs" / "sha256" / digest).read_text())
    return [layer["digest"] for layer in manifest["layers"]]


def _both(registry: RegistryServer, context: Path, out: Path) -> dict[str, tuple[object, ...]]:
    """Build with both snapshotters; the two images' trees (they must be equal)."""
    overlay = _describe(_build(registry, context, out / "overlay", "overlay"))
    walk = _describe(_build(registry, context, out / "walk", "walk"))
    assert overlay == walk
    return walk


def test_identical_layers_in_one_chain(
    registry: RegistryServer, busybox_layout: Path, tmp_path: Path
) -> None:
    repeated = _tar(tmp_path / "rep.tar", [("rep", "d", None), ("rep/f", "f", b"rep\n")])
    other = _tar(tmp_path / "other.tar", [("rep/f", "f", b"other\n"), ("other", "f", b"o\n")])
    base = _base_with_layers(
        registry, busybox_layout, tmp_path / "base", "twice", [repeated, other, repeated]
    )
    base_layers = [layer["digest"] for layer in skopeo_inspect(base, "--raw")["layers"]]
    assert base_layers[-1] == base_layers[-3]  # the manifest really lists one layer twice
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base} AS noop\nRUN true\nRUN true\nFROM noop\nRUN cat /rep/f /other > /seen\n"
    )
    tree = _both(registry, context, tmp_path / "out")
    walk_layers = _layers(tmp_path / "out" / "walk" / "oci")
    overlay_layers = _layers(tmp_path / "out" / "overlay" / "oci")
    # The last RUN wrote /seen at a different time in each build; the layers below are equal.
    assert overlay_layers[:-1] == walk_layers[:-1] and len(overlay_layers) == len(walk_layers)
    assert walk_layers[-2] == walk_layers[-3]  # the two no-op RUNs: one empty layer, twice
    seen = tmp_path / "out" / "overlay" / "bundle" / "rootfs" / "seen"
    assert seen.read_text() == "rep\no\n"  # the topmost copy of the repeated layer wins
    assert "seen" in tree


def test_a_link_in_a_lower_layer_leads_the_next_layers_entries(
    registry: RegistryServer, busybox_layout: Path, tmp_path: Path
) -> None:
    links = _tar(
        tmp_path / "links.tar",
        [("DIR", "d", None), ("DIR/x", "f", b"x\n"), ("a", "l", "DIR"), ("b", "l", "/DIR")],
    )
    through = _tar(
        tmp_path / "through.tar",
        [("a/f", "f", b"f\n"), ("b/g/h", "f", b"h\n"), ("a/.wh.x", "f", b"")],
    )
    base = _base_with_layers(registry, busybox_layout, tmp_path / "base", "links", [links, through])
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {base}\nRUN ls -la /a /b > /dev/null && find /DIR /a/ /b/ | sort > /seen\n"
    )
    tree = _both(registry, context, tmp_path / "out")
    assert tree["a"][3] == "DIR" and tree["b"][3] == "/DIR"  # still symlinks
    assert {"DIR/f", "DIR/g", "DIR/g/h"} <= set(tree) and "DIR/x" not in tree
    # What the RUN step saw (its filesystem, not the image's) is what umoci unpacks.
    seen = (tmp_path / "out" / "overlay" / "bundle" / "rootfs" / "seen").read_text().split()
    assert seen == ["/DIR", "/DIR/f", "/DIR/g", "/DIR/g/h", "/a/", "/a/f", "/a/g", "/a/g/h",
                    "/b/", "/b/f", "/b/g", "/b/g/h"]  # fmt: skip
    umoci_base = tmp_path / "umoci-base"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{tmp_path / 'base' / 'oci'}:latest", str(umoci_base)],
        check=True,
        capture_output=True,
    )
    base_tree = _describe(umoci_base / "rootfs")
    for path in ("a", "b", "DIR", "DIR/f", "DIR/g", "DIR/g/h"):
        assert base_tree[path] == tree[path], path
    assert "DIR/x" not in base_tree
