"""Overlay snapshots: mounts, diffs read from the upper dir, and the unpacked-layer store."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import threading
from pathlib import Path

import pytest

from kiln.errors import DigestMismatchError, LayerError
from kiln.fs import Changes, LayerStore, OverlayRootfs, overlay_changes, write_layer
from kiln.fs.overlay import MAX_LAYERS

pytestmark = pytest.mark.root


def _layer_tar(entries: list[tuple[str, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _mounted(path: Path) -> bool:
    return f" {path} " in Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def lower(tmp_path: Path) -> Path:
    root = tmp_path / "lower"
    for d in ("etc", "data/old", "keep"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "conf").write_text("conf\n")
    (root / "data" / "old" / "f").write_text("old\n")
    (root / "keep" / "f").write_text("keep\n")
    return root


def test_steps_write_to_the_upper_and_rotate_into_the_stack(tmp_path: Path, lower: Path) -> None:
    overlay = OverlayRootfs(tmp_path / "stage", [lower])
    try:
        assert _mounted(overlay.rootfs)
        (overlay.rootfs / "new").write_text("1\n")
        first = overlay.upper
        assert (first / "new").read_text() == "1\n" and not (lower / "new").exists()
        assert overlay.rotate() == first
        assert overlay.lowers == (lower, first) and overlay.upper != first
        os.unlink(overlay.rootfs / "new")
        assert stat.S_ISCHR(os.lstat(overlay.upper / "new").st_mode)  # an overlay whiteout
        assert (first / "new").exists()  # the frozen layer is untouched
    finally:
        overlay.close()
    assert not _mounted(overlay.rootfs)
    overlay.close()  # twice is fine


def test_a_deep_stack_mounts_whatever_the_directory_path_length(tmp_path: Path) -> None:
    # A long work directory: full paths of 180 lowers would overflow mount(2)'s option page.
    deep = tmp_path / ("long-directory-name-" * 8)
    lowers = []
    for i in range(MAX_LAYERS - 1):
        layer = deep / f"layer-{i}"
        layer.mkdir(parents=True)
        (layer / f"f{i}").write_text(f"{i}\n")
        lowers.append(layer)
    (lowers[0] / "shadowed").write_text("bottom\n")
    (lowers[-1] / "shadowed").write_text("top\n")
    overlay = OverlayRootfs(deep / "stage", lowers)
    try:
        assert (overlay.rootfs / "f0").read_text() == "0\n"
        assert (overlay.rootfs / f"f{MAX_LAYERS - 2}").read_text() == f"{MAX_LAYERS - 2}\n"
        assert (overlay.rootfs / "shadowed").read_text() == "top\n"  # lower order kept
        overlay.rotate()  # the stack is now MAX_LAYERS deep: still fine
        (overlay.rootfs / "more").write_text("x\n")
        with pytest.raises(LayerError, match="too many for one overlay mount"):
            overlay.rotate()
    finally:
        overlay.close()
    assert not _mounted(overlay.rootfs)


def test_changes_come_from_the_upper_in_oci_terms(tmp_path: Path, lower: Path) -> None:
    overlay = OverlayRootfs(tmp_path / "stage", [lower])
    root = overlay.rootfs
    try:
        etc = os.stat(root / "etc")
        (root / "etc" / "stub").write_text("")  # what the sandbox does for a mount point...
        os.unlink(root / "etc" / "stub")
        os.utime(root / "etc", ns=(etc.st_atime_ns, etc.st_mtime_ns))  # ...and puts back
        (root / "data" / "old" / "f").unlink()
        os.rmdir(root / "data" / "old")
        (root / "data" / "old").mkdir()
        (root / "data" / "old" / "g").write_text("g\n")
        (root / "keep" / "f").unlink()
        os.chmod(root / "keep", 0o700)
        (root / "proc").mkdir()
        changes = overlay_changes(overlay.upper, overlay.lowers, exclude=["proc"])
        layer = tmp_path / "layer"
        write_layer(overlay.upper, changes, layer, compression="none")
    finally:
        overlay.close()
    assert changes == Changes(
        changed=("data", "data/old", "data/old/g", "keep"),
        deleted=("keep/f",),
        opaque=("data/old",),
    )
    with tarfile.open(layer) as tar:
        names = tar.getnames()
    assert names == ["data", "data/old", "data/old/.wh..wh..opq", "data/old/g", "keep",
                     "keep/.wh.f"]  # fmt: skip


def test_layer_store_keeps_whiteouts_the_overlay_way(tmp_path: Path) -> None:
    data = _layer_tar([("a/", None), ("a/.wh.gone", b""), ("a/.wh..wh..opq", b""),
                       ("a/kept", b"k\n")])  # fmt: skip
    store = LayerStore(tmp_path / "store")
    path = store.ensure(_digest(data), lambda: io.BytesIO(data))  # type: ignore[arg-type,return-value]
    assert path == store.path(_digest(data)) and store.has(_digest(data))
    gone = os.lstat(path / "a" / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert os.getxattr(path / "a", "trusted.overlay.opaque") == b"y"
    assert (path / "a" / "kept").read_text() == "k\n"
    assert [p.name for p in store.root.iterdir()] == [path.name]  # no temporary left


def test_layer_store_checks_the_diff_id(tmp_path: Path) -> None:
    data = _layer_tar([("f", b"x")])
    store = LayerStore(tmp_path / "store")
    wrong = _digest(b"something else")
    with pytest.raises(DigestMismatchError):
        store.ensure(wrong, lambda: io.BytesIO(data))  # type: ignore[arg-type,return-value]
    assert not store.has(wrong) and list(store.root.iterdir()) == []


def test_layer_store_unpacks_once_under_concurrency(tmp_path: Path) -> None:
    data = _layer_tar([("f", b"x")])
    opened: list[int] = []
    store = LayerStore(tmp_path / "store")

    def opener() -> io.BytesIO:
        opened.append(1)
        return io.BytesIO(data)

    results: list[Path] = []
    threads = [
        threading.Thread(target=lambda: results.append(store.ensure(_digest(data), opener)))  # type: ignore[arg-type]
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(opened) == 1
    # A second store on the same directory (another build) reuses it without unpacking.
    assert LayerStore(tmp_path / "store").ensure(_digest(data), opener) == results[0]  # type: ignore[arg-type]
    assert len(opened) == 1
