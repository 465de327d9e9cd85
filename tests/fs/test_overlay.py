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
from kiln.fs import (
    Changes,
    LayerStore,
    OverlayRootfs,
    apply_layer,
    chain_id,
    overlay_changes,
    write_layer,
)
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
    # no temporary left; the layer needed no directory it does not carry, so it stands alone
    assert sorted(p.name for p in store.root.iterdir()) == [path.name, path.name + ".info"]
    assert store.alone(_digest(data))


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


def _tree(root: Path) -> dict[str, tuple[int, str | None]]:
    """Every path under root: its type bits and content (files) or target (symlinks)."""
    out: dict[str, tuple[int, str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            content = None
            if stat.S_ISREG(st.st_mode):
                content = path.read_text()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            out[str(path.relative_to(root))] = (stat.S_IFMT(st.st_mode), content)
    return out


def test_the_same_layer_twice_in_a_chain_mounts_like_applying_it_twice(tmp_path: Path) -> None:
    """Issue 10.2: one directory listed twice as a lower dir made the mount fail with ELOOP."""
    first = _layer_tar([("d/", None), ("d/x", b"ax\n"), ("y", b"ay\n")])
    second = _layer_tar([("d/", None), ("d/x", b"bx\n"), (".wh.y", b""), ("z", b"bz\n")])
    store = LayerStore(tmp_path / "store")
    a = store.ensure(_digest(first), lambda: io.BytesIO(first))  # type: ignore[arg-type,return-value]
    b = store.ensure(_digest(second), lambda: io.BytesIO(second))  # type: ignore[arg-type,return-value]
    tars = {a: first, b: second}
    for lowers in ([a, b, a], [a, a], [b, a, b, a]):
        reference = tmp_path / f"applied-{len(lowers)}"
        reference.mkdir()
        for lower in lowers:
            apply_layer(io.BytesIO(tars[lower]), reference)
        overlay = OverlayRootfs(tmp_path / f"stage-{len(lowers)}", lowers)
        try:
            assert _tree(overlay.rootfs) == _tree(reference)
            assert (overlay.rootfs / "d" / "x").read_text() == "ax\n"
            assert (overlay.rootfs / "y").read_text() == "ay\n"
            assert ("z" in _tree(reference)) == (b in lowers)  # the middle layer took part
            (overlay.rootfs / "w").write_text("w\n")  # and it is writable as ever
            overlay.rotate()
            assert (overlay.rootfs / "w").read_text() == "w\n"
        finally:
            overlay.close()


def _tar(entries: list[tuple[str, str, bytes | str | None, int]]) -> bytes:
    """Entries as (name, kind "d"/"f"/"l"/"h", data or link target, mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.mtime = mode, 1_600_000_000
            if kind == "d":
                info.type = tarfile.DIRTYPE
            elif kind in ("l", "h"):
                info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                info.linkname = str(data)
            else:
                assert isinstance(data, bytes)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            tar.addfile(info)
    return buffer.getvalue()


def _full_tree(root: Path) -> dict[str, tuple[int, int, str | None]]:
    """``_tree`` plus each entry's permission bits and owner, and hardlink partners."""
    out: dict[str, tuple[int, int, str | None]] = {}
    for rel, (kind, content) in _tree(root).items():
        st = os.lstat(root / rel)
        links = f"{content}|links={st.st_nlink}" if kind == stat.S_IFREG else content
        out[rel] = (st.st_mode, st.st_uid, links)
    return out


def test_a_layer_lands_where_the_layers_below_lead_like_a_whole_rootfs(tmp_path: Path) -> None:
    """Issue 11.11: ``a -> DIR`` in one layer, ``a/f`` in the next: f lands in DIR (not a new a)."""
    layers = [
        _tar([("DIR", "d", None, 0o750), ("DIR/x", "f", b"x\n", 0o644), ("a", "l", "DIR", 0o777),
              ("b", "l", "/DIR", 0o777), ("plain", "d", None, 0o700),
              ("plain/old", "f", b"o\n", 0o644), ("file", "f", b"F\n", 0o644)]),
        # no entries for a, b or plain: they resolve through the layer below
        _tar([("a/f", "f", b"f\n", 0o600), ("b/g/h", "f", b"h\n", 0o644), ("a/.wh.x", "f", b"", 0),
              ("plain/new", "f", b"n\n", 0o644), ("plain/hard", "h", "plain/old", 0o644)]),
        _tar([("top", "f", b"t\n", 0o644)]),  # stands alone, over a chained layer
    ]  # fmt: skip
    reference = tmp_path / "applied"
    reference.mkdir()
    for data in layers:
        apply_layer(io.BytesIO(data), reference)
    store = LayerStore(tmp_path / "store")
    lowers: list[Path] = []
    chain: str | None = None
    for data in layers:
        chain = chain_id(chain, _digest(data))
        lowers.append(store.ensure_on(_digest(data), lambda d=data: io.BytesIO(d), lowers, chain))  # type: ignore[misc]
    assert [store.alone(_digest(d)) for d in layers] == [True, False, True]
    assert lowers[1].parent.name == "chains" and lowers[2] == store.path(_digest(layers[2]))
    overlay = OverlayRootfs(tmp_path / "stage", lowers)
    try:
        merged = _full_tree(overlay.rootfs)
    finally:
        overlay.close()
    expected = _full_tree(reference)
    assert merged == expected
    assert expected["a"][2] == "DIR" and expected["b"][2] == "/DIR"  # still links
    assert {"DIR/f", "DIR/g/h"} <= set(expected) and "DIR/x" not in expected
    assert expected["plain"][0] & 0o7777 == 0o700  # the lower directory's mode, kept
    assert expected["plain/hard"][2] == "o\n|links=2"
    # A layer whose implicit parent is a file below it fails as on a whole rootfs.
    bad = _tar([("file/f", "f", b"z\n", 0o644)])
    bad_chain = chain_id(chain, _digest(bad))
    with pytest.raises(LayerError, match="not a directory"):
        store.ensure_on(_digest(bad), lambda: io.BytesIO(bad), lowers, bad_chain)  # type: ignore[arg-type,return-value]
