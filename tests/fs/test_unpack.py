"""apply_layer: OCI semantics for ordinary (non-hostile) layers."""

from __future__ import annotations

import gzip
import io
import logging
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from kiln.errors import LayerError
from kiln.fs import apply_layer, open_layer

from .tarbuild import dir_, entry, hard, make_tar, sym

MTIME = 1_600_000_000


def test_regular_files_dirs_and_symlinks(tmp_path: Path) -> None:
    tar = make_tar(
        dir_("etc", mode=0o750),
        entry("etc/hosts", data=b"127.0.0.1 localhost\n", mode=0o640),
        entry("bin/tool", data=b"#!/bin/sh\n", mode=0o755),  # parent not in the tar
        sym("bin/sh", "/bin/tool"),
    )
    apply_layer(tar, tmp_path)
    assert (tmp_path / "etc" / "hosts").read_bytes() == b"127.0.0.1 localhost\n"
    assert stat.S_IMODE(os.stat(tmp_path / "etc").st_mode) == 0o750
    assert stat.S_IMODE(os.stat(tmp_path / "etc" / "hosts").st_mode) == 0o640
    assert os.readlink(tmp_path / "bin" / "sh") == "/bin/tool"
    assert (tmp_path / "bin").is_dir()


def test_ownership_setuid_and_times(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for chown")
    tar = make_tar(
        dir_("d", uid=7, gid=8, mtime=MTIME - 50, mode=0o1777),
        entry("d/su", data=b"x", uid=1000, gid=1001, mode=0o4755, mtime=MTIME),
        entry("d/sg", data=b"x", uid=1000, gid=1001, mode=0o2711, mtime=MTIME),
        sym("d/link", "su"),
    )
    apply_layer(tar, tmp_path)
    st = os.stat(tmp_path / "d" / "su")
    assert (st.st_uid, st.st_gid) == (1000, 1001)
    assert stat.S_IMODE(st.st_mode) == 0o4755  # chmod after chown keeps setuid
    assert stat.S_IMODE(os.stat(tmp_path / "d" / "sg").st_mode) == 0o2711
    assert st.st_mtime == MTIME
    d = os.stat(tmp_path / "d")
    assert (d.st_uid, d.st_gid, stat.S_IMODE(d.st_mode)) == (7, 8, 0o1777)
    assert d.st_mtime == MTIME - 50  # set after its children were created


def test_xattrs_are_applied(tmp_path: Path) -> None:
    cap = b"\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    pax = {
        "SCHILY.xattr.user.comment": "hello",
        "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
    }
    apply_layer(make_tar(entry("f", data=b"x", pax=pax)), tmp_path)
    try:
        assert os.getxattr(tmp_path / "f", "user.comment") == b"hello"
    except OSError:
        pytest.skip("filesystem without user xattrs")
    if os.geteuid() == 0:
        assert os.getxattr(tmp_path / "f", "security.capability") == cap


def test_whiteout_removes_lower_file_and_dir(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("a/f", data=b"1"), entry("b/c/d", data=b"2")), tmp_path)
    apply_layer(make_tar(entry("a/.wh.f"), entry(".wh.b"), entry(".wh.missing")), tmp_path)
    assert not (tmp_path / "a" / "f").exists()
    assert not (tmp_path / "b").exists()
    assert (tmp_path / "a").is_dir()


def test_whiteout_does_not_delete_same_layer_entry(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("f", data=b"old")), tmp_path)
    apply_layer(make_tar(entry("f", data=b"new"), entry(".wh.f")), tmp_path)
    assert (tmp_path / "f").read_bytes() == b"new"


def test_whiteout_does_not_delete_dir_holding_same_layer_entries(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("d/old", data=b"old")), tmp_path)
    apply_layer(make_tar(entry("d/new", data=b"new"), entry(".wh.d")), tmp_path)
    assert (tmp_path / "d" / "new").read_bytes() == b"new"


def test_whiteout_of_a_symlink_removes_the_link_only(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("data/keep", data=b"k"), sym("link", "data")), tmp_path)
    apply_layer(make_tar(entry(".wh.link")), tmp_path)
    assert not os.path.lexists(tmp_path / "link")
    assert (tmp_path / "data" / "keep").read_bytes() == b"k"


def test_opaque_directory_hides_lower_entries(tmp_path: Path) -> None:
    apply_layer(
        make_tar(entry("d/old", data=b"1"), entry("d/sub/old", data=b"2"), entry("e", data=b"3")),
        tmp_path,
    )
    tar = make_tar(
        dir_("d"),
        entry("d/new", data=b"new"),
        entry("d/sub/new2", data=b"n2"),
        entry("d/.wh..wh..opq"),  # after the new entries: they must survive
    )
    apply_layer(tar, tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "d",
        "d/new",
        "d/sub",
        "d/sub/new2",
        "e",
    ]


def test_opaque_first_then_entries(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("d/old", data=b"1")), tmp_path)
    apply_layer(make_tar(dir_("d"), entry("d/.wh..wh..opq"), entry("d/x", data=b"x")), tmp_path)
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["x"]


def test_existing_dir_keeps_contents_and_gets_new_metadata(tmp_path: Path) -> None:
    apply_layer(make_tar(dir_("d", mode=0o700), entry("d/f", data=b"1")), tmp_path)
    apply_layer(make_tar(dir_("d", mode=0o755, mtime=MTIME + 5)), tmp_path)
    assert (tmp_path / "d" / "f").read_bytes() == b"1"
    st = os.stat(tmp_path / "d")
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_mtime == MTIME + 5


def test_file_replaces_dir_and_dir_replaces_file(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("a/inner", data=b"1"), entry("b", data=b"file")), tmp_path)
    apply_layer(
        make_tar(entry("a", data=b"now a file"), dir_("b"), entry("b/x", data=b"")), tmp_path
    )
    assert (tmp_path / "a").read_bytes() == b"now a file"
    assert (tmp_path / "b").is_dir()
    assert (tmp_path / "b" / "x").exists()


def test_dir_entry_replaces_symlink(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "d")
    apply_layer(make_tar(dir_("d"), entry("d/f", data=b"1")), tmp_path)
    assert not (tmp_path / "d").is_symlink()
    assert (tmp_path / "d" / "f").exists()
    assert list((tmp_path / "real").iterdir()) == []


def test_hardlinks_share_the_inode(tmp_path: Path) -> None:
    apply_layer(
        make_tar(entry("usr/bin/a", data=b"prog"), hard("usr/bin/b", "/usr/bin/a")), tmp_path
    )
    a, b = tmp_path / "usr/bin/a", tmp_path / "usr/bin/b"
    assert a.samefile(b)
    assert b.read_bytes() == b"prog"
    # a link to a file from a lower layer works too
    apply_layer(make_tar(hard("c", "usr/bin/a")), tmp_path)
    assert (tmp_path / "c").samefile(a)


def test_hardlink_to_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="directory"):
        apply_layer(make_tar(dir_("d"), hard("l", "d")), tmp_path)


def test_fifo_and_device(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    null = entry("dev/null", tarfile.CHRTYPE, mode=0o666)
    null[0].devmajor, null[0].devminor = 1, 3
    zero = entry("dev/zero", tarfile.CHRTYPE, mode=0o666)
    zero[0].devmajor, zero[0].devminor = 1, 5
    with caplog.at_level(logging.WARNING, logger="kiln.fs"):
        apply_layer(make_tar(entry("run/fifo", tarfile.FIFOTYPE, mode=0o600), null, zero), tmp_path)
    assert stat.S_ISFIFO(os.lstat(tmp_path / "run" / "fifo").st_mode)
    if os.path.lexists(tmp_path / "dev" / "null"):
        st = os.lstat(tmp_path / "dev" / "null")
        assert stat.S_ISCHR(st.st_mode)
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
        assert stat.S_IMODE(st.st_mode) == 0o666
    else:  # no CAP_MKNOD: skipped, with one warning for both devices
        assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
        assert "device nodes" in caplog.records[0].getMessage()


def test_truncated_tar_is_a_layer_error(tmp_path: Path) -> None:
    data = make_tar(entry("f", data=b"x" * 5000)).getvalue()[:1500]
    with pytest.raises(LayerError):
        apply_layer(io.BytesIO(data), tmp_path)


def test_open_layer_sniffs_compression(tmp_path: Path) -> None:
    raw = make_tar(entry("hello", data=b"world")).getvalue()
    plain, gz, zst = tmp_path / "plain", tmp_path / "gz", tmp_path / "zst"
    plain.write_bytes(raw)
    gz.write_bytes(gzip.compress(raw))
    subprocess.run(["zstd", "-q", "-o", str(zst), str(plain)], check=True)
    for path in (plain, gz, zst):
        with open_layer(path) as stream:
            assert stream.read() == raw, path
        root = tmp_path / f"root-{path.name}"
        root.mkdir()
        with open_layer(path) as stream:
            apply_layer(stream, root)
        assert (root / "hello").read_bytes() == b"world"


def test_open_layer_reports_corrupt_zstd(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 10)
    with pytest.raises(LayerError, match="zstd"), open_layer(bad) as stream:
        stream.read()


def test_hardlink_to_itself_keeps_the_file(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("f", data=b"keep")), tmp_path)
    apply_layer(make_tar(hard("f", "f")), tmp_path)
    assert (tmp_path / "f").read_bytes() == b"keep"


def test_hardlink_replaces_existing_entry(tmp_path: Path) -> None:
    apply_layer(make_tar(entry("f", data=b"target"), entry("g/sub", data=b"old dir")), tmp_path)
    apply_layer(make_tar(hard("g", "f")), tmp_path)
    assert (tmp_path / "g").samefile(tmp_path / "f")
