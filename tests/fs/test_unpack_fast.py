"""The unpacker's fast paths give the same tree as the careful ones, hostile input included.

The unpacker caches resolved directories, creates optimistically (``EEXIST`` -> clear the way)
and skips ``fchown``/``fchmod`` when creating a file already gives the wanted owner and mode.
Each test here targets one of those shortcuts: the umask, setgid directories, default ACLs,
duplicate entries, and entries that replace or remove a directory the cache went through.
Every layer is unpacked both ways kiln does it: ``apply_layer`` and the ``LayerStore``.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from kiln.errors import LayerError, UnsafePathError
from kiln.fs import LayerStore, apply_layer

from .tarbuild import dir_, entry, hard, make_tar, sym

MTIME = 1_600_000_000
ME = {"uid": os.geteuid(), "gid": os.getegid()}
Unpack = Callable[[io.BytesIO, Path], Path]


def _apply(tar: io.BytesIO, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    apply_layer(tar, root)
    return root


def _store(tar: io.BytesIO, root: Path) -> Path:
    data = tar.getvalue()
    store = LayerStore(root.parent / (root.name + "-store"), xattr_prefix="user.overlay.")
    return store.ensure("sha256:" + hashlib.sha256(data).hexdigest(), lambda: io.BytesIO(data))  # type: ignore[arg-type,return-value]


@pytest.fixture(params=[_apply, _store], ids=["apply_layer", "layer_store"])
def unpack(request: pytest.FixtureRequest) -> Unpack:
    return request.param  # type: ignore[no-any-return]


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


# --- modes and owners --------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o077, 0o027])
def test_modes_are_exact_whatever_the_umask(tmp_path: Path, unpack: Unpack, mask: int) -> None:
    modes = [0o644, 0o666, 0o777, 0o600, 0o000, 0o755, 0o4755, 0o2711, 0o1755, 0o6777]
    tar = make_tar(
        dir_("d", mode=0o775, **ME),
        *(entry(f"d/f{mode:o}", data=b"x", mode=mode, **ME) for mode in modes),
    )
    with _umask(mask):
        root = unpack(tar, tmp_path / "root")
    for mode in modes:
        assert _mode(root / "d" / f"f{mode:o}") == mode, oct(mode)
        assert os.stat(root / "d" / f"f{mode:o}").st_mtime == MTIME
    assert _mode(root / "d") == 0o775


def test_default_acl_decides_no_mode(tmp_path: Path, unpack: Unpack) -> None:
    """With a default ACL, creating a file ignores the umask; kiln must still chmod."""
    acl = bytes.fromhex("02000000" + "01000700ffffffff" + "04000500ffffffff" + "20000000ffffffff")
    root = tmp_path / "root"
    root.mkdir()
    parent = root if unpack is _apply else tmp_path  # the store's temporary dir inherits it
    try:
        os.setxattr(parent, "system.posix_acl_default", acl)
    except OSError as exc:
        pytest.skip(f"no POSIX ACLs here: {exc}")
    tar = make_tar(
        entry("a", data=b"x", mode=0o644, **ME),
        entry("d/b", data=b"x", mode=0o666, **ME),
        dir_("e", mode=0o755, **ME),
        entry("e/c", data=b"x", mode=0o604, **ME),
    )
    out = unpack(tar, root)
    assert (_mode(out / "a"), _mode(out / "d" / "b"), _mode(out / "e" / "c")) == (
        0o644,
        0o666,
        0o604,
    )


@pytest.mark.root
def test_owners_other_than_the_creator_are_set(tmp_path: Path, unpack: Unpack) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for chown")
    tar = make_tar(
        entry("f", data=b"x", uid=1000, gid=1001, mode=0o644),
        entry("g", data=b"x", uid=0, gid=5, mode=0o644),
        entry("h", data=b"x", uid=7, gid=0, mode=0o4750),
        sym("s", "f"),
    )
    root = unpack(tar, tmp_path / "root")
    owners = {name: (os.lstat(root / name).st_uid, os.lstat(root / name).st_gid) for name in "fghs"}
    assert owners == {"f": (1000, 1001), "g": (0, 5), "h": (7, 0), "s": (0, 0)}
    assert _mode(root / "h") == 0o4750


@pytest.mark.root
def test_setgid_directory_does_not_lend_its_group(tmp_path: Path, unpack: Unpack) -> None:
    """A file created in a setgid directory gets the directory's group, not the creator's."""
    if os.geteuid() != 0:
        pytest.skip("needs root for chown")
    tar = make_tar(
        dir_("shared", mode=0o2775, gid=50),
        entry("shared/root-group", data=b"x", mode=0o644),
        entry("shared/its-group", data=b"x", mode=0o644, gid=50),
        entry("shared/sub/deeper", data=b"x", mode=0o644),  # sub is created setgid, group 50
    )
    root = unpack(tar, tmp_path / "root")
    assert os.stat(root / "shared" / "root-group").st_gid == 0
    assert os.stat(root / "shared" / "its-group").st_gid == 50
    assert os.stat(root / "shared" / "sub" / "deeper").st_gid == 0


@pytest.mark.root
def test_setgid_directory_from_a_lower_layer(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for chown")
    root = tmp_path / "root"
    (root / "lower").mkdir(parents=True)
    os.chown(root / "lower", 0, 60)
    os.chmod(root / "lower", 0o2777)
    apply_layer(make_tar(entry("lower/f", data=b"x", mode=0o644)), root)
    assert os.stat(root / "lower" / "f").st_gid == 0
    # and a directory entry later in the layer changes what files in it get
    tar = make_tar(
        entry("later/a", data=b"x", mode=0o644),
        dir_("later", mode=0o2755, gid=70),
        entry("later/b", data=b"x", mode=0o644),
    )
    apply_layer(tar, root)
    assert (os.stat(root / "later" / "a").st_gid, os.stat(root / "later" / "b").st_gid) == (0, 0)


# --- duplicate entries -------------------------------------------------------------------------


def test_duplicate_entries_last_one_wins(tmp_path: Path, unpack: Unpack) -> None:
    tar = make_tar(
        entry("f", data=b"one", mode=0o600, mtime=MTIME - 9, **ME),
        entry("f", data=b"two", mode=0o640, **ME),
        dir_("d", **ME),
        entry("d/inner", data=b"i", **ME),
        entry("d", data=b"d is a file now", **ME),
        entry("x", data=b"x was a file", **ME),
        dir_("x", mode=0o700, **ME),
        entry("x/y", data=b"y", **ME),
        sym("s", "f"),
        entry("s", data=b"s replaces a symlink", **ME),
        entry("h", data=b"first inode", **ME),
        hard("h2", "h"),
        entry("h", data=b"second inode", **ME),
        dir_("same", mode=0o711, **ME),
        dir_("same", mode=0o755, **ME),
    )
    root = unpack(tar, tmp_path / "root")
    assert (root / "f").read_bytes() == b"two" and _mode(root / "f") == 0o640
    assert os.stat(root / "f").st_mtime == MTIME
    assert (root / "d").read_bytes() == b"d is a file now"
    assert (root / "x").is_dir() and (root / "x" / "y").read_bytes() == b"y"
    assert _mode(root / "x") == 0o700
    assert not (root / "s").is_symlink() and (root / "s").read_bytes() == b"s replaces a symlink"
    assert (root / "h").read_bytes() == b"second inode"
    assert (root / "h2").read_bytes() == b"first inode"
    assert _mode(root / "same") == 0o755


def test_hardlink_to_a_file_written_earlier(tmp_path: Path, unpack: Unpack) -> None:
    tar = make_tar(
        entry("usr/lib/real", data=b"library", mode=0o755, **ME),
        hard("usr/lib/alias", "usr/lib/real"),
        hard("other/dir/alias2", "./usr/lib/real"),
    )
    root = unpack(tar, tmp_path / "root")
    real = root / "usr" / "lib" / "real"
    assert (root / "usr" / "lib" / "alias").samefile(real)
    assert (root / "other" / "dir" / "alias2").samefile(real)
    assert os.stat(real).st_nlink == 3 and _mode(real) == 0o755


# --- the directory cache must never outlive what it resolved ----------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A directory next to the rootfs that nothing may write into."""
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "keep").write_bytes(b"keep")
    yield victim
    assert sorted(p.name for p in victim.iterdir()) == ["keep"]
    assert (victim / "keep").read_bytes() == b"keep"


@pytest.mark.parametrize("target", ["/", "../../..", "OUTSIDE"])
def test_dir_replaced_by_symlink_mid_layer(
    tmp_path: Path, unpack: Unpack, outside: Path, target: str
) -> None:
    link = str(outside) if target == "OUTSIDE" else target
    tar = make_tar(
        dir_("d"),
        entry("d/before", data=b"1"),  # the cache now knows d
        sym("d", link),  # d becomes a symlink leading "outside"
        entry("d/after", data=b"2"),
        dir_("d/newdir"),
        entry("d/newdir/f", data=b"3"),
    )
    root = unpack(tar, tmp_path / "root")
    assert (root / "d").is_symlink()
    rerooted = root / link.lstrip("/") if target == "OUTSIDE" else root
    assert (rerooted / "after").read_bytes() == b"2"
    assert (rerooted / "newdir" / "f").read_bytes() == b"3"


def test_ancestor_replaced_by_symlink_mid_layer(
    tmp_path: Path, unpack: Unpack, outside: Path
) -> None:
    tar = make_tar(
        entry("a/b/c/f", data=b"1"),  # caches a/b/c
        sym("elsewhere", str(outside)),
        hard("a", "elsewhere"),  # a is now (a hardlink to) a symlink to outside
        entry("a/b/c/g", data=b"2"),
    )
    root = unpack(tar, tmp_path / "root")
    assert (root / str(outside).lstrip("/") / "b" / "c" / "g").read_bytes() == b"2"


def test_directory_times_never_reach_outside(tmp_path: Path, unpack: Unpack, outside: Path) -> None:
    """Directory mtimes are set last; by then an ancestor may be a symlink leading outside."""
    before = os.stat(outside).st_mtime_ns
    tar = make_tar(
        dir_("x"),
        dir_(f"x/{outside.name}", mtime=1234),  # its mtime is set after the last entry...
        sym("x", str(outside.parent)),  # ...when x/outside leads to the real outside
    )
    root = unpack(tar, tmp_path / "root")
    assert (root / "x").is_symlink()
    assert os.stat(outside).st_mtime_ns == before


def test_dir_replaced_by_file_mid_layer(tmp_path: Path, unpack: Unpack, outside: Path) -> None:
    tar = make_tar(entry("d/f", data=b"1"), entry("d", data=b"now a file"), entry("d/g", data=b"2"))
    with pytest.raises(LayerError, match="not a directory"):
        unpack(tar, tmp_path / "root")


def test_symlinked_parent_replaced_by_a_directory(tmp_path: Path, unpack: Unpack) -> None:
    tar = make_tar(
        dir_("real"),
        sym("l", "real"),
        entry("l/f", data=b"via the link"),  # caches l -> real
        dir_("l"),  # the symlink becomes a directory
        entry("l/g", data=b"in the directory"),
    )
    root = unpack(tar, tmp_path / "root")
    assert (root / "real" / "f").read_bytes() == b"via the link"
    assert (root / "l" / "g").read_bytes() == b"in the directory"
    assert not (root / "real" / "g").exists()


def test_whiteout_removes_a_symlink_the_cache_went_through(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply_layer(make_tar(dir_("x"), sym("a", "x")), root)
    tar = make_tar(
        entry("a/b/f", data=b"1"),  # lands in x/b/f, caches a/b -> x/b
        entry(".wh.a"),  # removes the symlink (this layer did not write it)
        dir_("a"),
        entry("a/b/g", data=b"2"),
    )
    apply_layer(tar, root)
    assert (root / "x" / "b" / "f").read_bytes() == b"1"
    assert (root / "a" / "b" / "g").read_bytes() == b"2"
    assert not (root / "x" / "b" / "g").exists()


def test_opaque_removes_a_symlink_the_cache_went_through(tmp_path: Path) -> None:
    root = tmp_path / "root"
    apply_layer(make_tar(dir_("x"), dir_("o"), sym("o/lnk", "../x")), root)
    tar = make_tar(
        entry("o/lnk/b/f", data=b"1"),  # lands in x/b/f
        entry("o/.wh..wh..opq"),  # o/lnk was not written by this layer: removed
        entry("o/lnk/b/g", data=b"2"),
    )
    apply_layer(tar, root)
    assert (root / "x" / "b" / "f").read_bytes() == b"1"
    assert not (root / "o" / "lnk").is_symlink()
    assert (root / "o" / "lnk" / "b" / "g").read_bytes() == b"2"
    assert not (root / "x" / "b" / "g").exists()


def test_hostile_names_after_cached_entries(tmp_path: Path, unpack: Unpack, outside: Path) -> None:
    tar = make_tar(entry("a/f", data=b"1"), entry("a/../../escape", data=b"pwned"))
    with pytest.raises(UnsafePathError, match="climbs out"):
        unpack(tar, tmp_path / "root")


# --- what tarfile reads the slow way ------------------------------------------------------------


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
def test_gnu_sparse_file(tmp_path: Path, unpack: Unpack) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sparse", "wb") as f:
        f.truncate(2 << 20)
        f.seek(1 << 20)
        f.write(b"island")
    (src / "after").write_bytes(b"after")
    archive = tmp_path / "sparse.tar"
    subprocess.run(
        ["tar", "--format=gnu", "-S", "-cf", str(archive), "-C", str(src), "."], check=True
    )
    root = unpack(io.BytesIO(archive.read_bytes()), tmp_path / "root")
    assert (root / "sparse").read_bytes() == (src / "sparse").read_bytes()
    assert (root / "after").read_bytes() == b"after"


def test_pax_long_names_and_fractional_mtime(tmp_path: Path, unpack: Unpack) -> None:
    deep = "/".join(["component-" + "x" * 40] * 8)
    info, data = entry(deep + "/file", data=b"deep", **ME)
    info.mtime = 1_600_000_000.25  # type: ignore[assignment]
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    root = unpack(buf, tmp_path / "root")
    st = os.stat(root / deep / "file")
    assert abs(st.st_mtime_ns - 1_600_000_000_250_000_000) < 1000
