"""write_layer: deterministic tars, digests computed in one pass, readable by other tools."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import tarfile
import threading
from pathlib import Path

import pytest

from kiln.errors import LayerError, UnsafePathError
from kiln.fs import (
    Changes,
    GrowingFile,
    LayerInfo,
    WalkSnapshotter,
    apply_layer,
    open_layer,
    write_layer,
    write_layer_from_paths,
)

MTIME = 1_650_000_000


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "usr" / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "usr" / "bin" / "prog").write_bytes(b"\x7fELF" + bytes(range(256)) * 40)
    os.link(root / "usr" / "bin" / "prog", root / "usr" / "bin" / "prog2")
    os.symlink("prog", root / "usr" / "bin" / "alias")
    (root / "etc" / "conf").write_text("key=value\n")
    os.chmod(root / "usr" / "bin" / "prog", 0o4755)
    os.mkfifo(root / "etc" / "fifo")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), (MTIME, MTIME), follow_symlinks=False)
    return root


ALL = Changes(
    changed=(
        "etc/conf",
        "etc/fifo",
        "usr/bin/alias",
        "usr/bin/prog",
        "usr/bin/prog2",
    ),
    deleted=("var/old", "etc/gone"),
)


def members(blob: Path) -> list[tarfile.TarInfo]:
    with open_layer(blob) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
        return list(tar)


def test_digests_are_sha256_of_blob_and_tar(rootfs: Path, tmp_path: Path) -> None:
    out = tmp_path / "layer.tar.gz"
    info = write_layer(rootfs, ALL, out)
    blob = out.read_bytes()
    assert info == LayerInfo(sha256(blob), sha256(gzip.decompress(blob)), len(blob), "gzip")
    assert info.media_type_suffix == "+gzip"
    assert blob[:2] == b"\x1f\x8b"


def test_output_is_deterministic(rootfs: Path, tmp_path: Path) -> None:
    first = write_layer(rootfs, ALL, tmp_path / "a")
    # touching ctime/atime and re-listing in another order must not matter
    os.utime(rootfs / "etc" / "conf", (MTIME + 0.25, MTIME + 0.25))
    shuffled = Changes(tuple(reversed(ALL.changed)), tuple(reversed(ALL.deleted)))
    second = write_layer(rootfs, shuffled, tmp_path / "b")
    assert first == second
    assert (tmp_path / "a").read_bytes() == (tmp_path / "b").read_bytes()


def test_entries_sorted_with_parents_hardlinks_and_whiteouts(rootfs: Path, tmp_path: Path) -> None:
    write_layer(rootfs, ALL, tmp_path / "l")
    entries = members(tmp_path / "l")
    names = [m.name for m in entries]
    assert names == [
        "etc",
        "etc/.wh.gone",
        "etc/conf",
        "etc/fifo",
        "usr",
        "usr/bin",
        "usr/bin/alias",
        "usr/bin/prog",
        "usr/bin/prog2",
        "var/.wh.old",  # "var" does not exist any more: no parent entry for it
    ]
    by_name = {m.name: m for m in entries}
    assert by_name["usr/bin/prog2"].islnk()
    assert by_name["usr/bin/prog2"].linkname == "usr/bin/prog"
    assert by_name["usr/bin/alias"].issym() and by_name["usr/bin/alias"].linkname == "prog"
    assert by_name["usr/bin/prog"].mode == 0o4755
    assert by_name["etc/fifo"].isfifo()
    assert all(m.uname == "" and m.gname == "" for m in entries)
    assert by_name["etc/conf"].mtime == MTIME


def test_without_parents_only_listed_paths(rootfs: Path, tmp_path: Path) -> None:
    write_layer(rootfs, Changes(("usr/bin/prog",)), tmp_path / "l", include_parents=False)
    assert [m.name for m in members(tmp_path / "l")] == ["usr/bin/prog"]


def test_source_date_epoch_clamps_mtimes(rootfs: Path, tmp_path: Path) -> None:
    write_layer(rootfs, ALL, tmp_path / "l", source_date_epoch=1000)
    assert {m.mtime for m in members(tmp_path / "l")} <= {0, 1000}
    write_layer(rootfs, ALL, tmp_path / "m", source_date_epoch=MTIME + 10**6)
    assert MTIME in {m.mtime for m in members(tmp_path / "m")}  # later epochs do not raise


@pytest.mark.parametrize("compression", ["none", "zstd"])
def test_other_compressions(rootfs: Path, tmp_path: Path, compression: str) -> None:
    out = tmp_path / "l"
    info = write_layer(rootfs, ALL, out, compression=compression)
    assert info.digest == sha256(out.read_bytes())
    with open_layer(out) as stream:
        assert info.diff_id == sha256(stream.read())
    if compression == "none":
        assert info.digest == info.diff_id and info.media_type_suffix == ""
    else:
        assert out.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"


def test_unknown_compression(rootfs: Path, tmp_path: Path) -> None:
    with pytest.raises(LayerError, match="compression"):
        write_layer(rootfs, ALL, tmp_path / "l", compression="lz4")
    assert not (tmp_path / "l").exists()


def test_system_tar_reads_the_layer(rootfs: Path, tmp_path: Path) -> None:
    out = tmp_path / "l.tar.gz"
    write_layer(rootfs, ALL, out)
    listing = subprocess.run(
        ["tar", "-tvzf", str(out), "--numeric-owner"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    assert any(line.startswith("-rwsr-xr-x") and "usr/bin/prog" in line for line in listing)
    assert any(
        line.startswith("hrwsr-xr-x") and "usr/bin/prog2 link to usr/bin/prog" in line
        for line in listing
    )
    assert any(
        line.startswith("lrwxrwxrwx") and "usr/bin/alias -> prog" in line for line in listing
    )
    assert any(line.startswith("prw") and "etc/fifo" in line for line in listing)
    dest = tmp_path / "extracted"
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(dest)], check=True)
    assert (dest / "usr/bin/prog").read_bytes() == (rootfs / "usr/bin/prog").read_bytes()
    assert (dest / "usr/bin/prog2").samefile(dest / "usr/bin/prog")


def test_round_trip_through_apply_layer(rootfs: Path, tmp_path: Path) -> None:
    (rootfs / "etc" / "conf").chmod(0o600)
    try:
        os.setxattr(rootfs / "etc" / "conf", "user.origin", b"kiln\xff")
    except OSError:
        pytest.skip("no user xattrs here")
    out = tmp_path / "l"
    write_layer(rootfs, Changes(ALL.changed), out)
    dest = tmp_path / "dest"
    dest.mkdir()
    with open_layer(out) as stream:
        apply_layer(stream, dest)
    for rel in ALL.changed:
        a, b = os.lstat(rootfs / rel), os.lstat(dest / rel)
        assert (a.st_mode, a.st_uid, a.st_gid, a.st_size, int(a.st_mtime)) == (
            b.st_mode,
            b.st_uid,
            b.st_gid,
            b.st_size,
            int(b.st_mtime),
        ), rel
    assert os.getxattr(dest / "etc" / "conf", "user.origin") == b"kiln\xff"
    assert (dest / "usr/bin/prog2").samefile(dest / "usr/bin/prog")


def test_snapshot_then_layer_then_apply_reproduces_deletions(rootfs: Path, tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    lower.mkdir()
    write_layer(rootfs, Changes(ALL.changed), tmp_path / "base", compression="none")
    with open(tmp_path / "base", "rb") as stream:
        apply_layer(stream, lower)
    snap = WalkSnapshotter(rootfs)
    snap.baseline()
    (rootfs / "etc" / "conf").unlink()
    (rootfs / "etc" / "new").write_text("new")
    write_layer(rootfs, snap.changes(), tmp_path / "diff")
    with open_layer(tmp_path / "diff") as stream:
        apply_layer(stream, lower)
    assert not (lower / "etc" / "conf").exists()
    assert (lower / "etc" / "new").read_text() == "new"


def test_from_paths_includes_subtrees(rootfs: Path, tmp_path: Path) -> None:
    write_layer_from_paths(rootfs, ["usr", "/etc/conf"], tmp_path / "l")
    names = [m.name for m in members(tmp_path / "l")]
    assert names == [
        "etc",
        "etc/conf",
        "usr",
        "usr/bin",
        "usr/bin/alias",
        "usr/bin/prog",
        "usr/bin/prog2",
    ]


def test_refuses_to_read_through_symlinked_parent(rootfs: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key").write_text("private")
    os.symlink(str(secret), rootfs / "evil")
    with pytest.raises(UnsafePathError):
        write_layer(rootfs, Changes(("evil/key",)), tmp_path / "l")
    assert not (tmp_path / "l").exists()


def test_constant_memory_for_large_file(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with open(root / "big", "wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: cheap on disk, 64 MiB through the pipeline
    import tracemalloc

    tracemalloc.start()
    info = write_layer(root, Changes(("big",)), tmp_path / "l", level=1)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 24 * 1024 * 1024  # compressor blocks in flight, not the 64 MiB file
    assert info.size < 1024 * 1024


def test_user_file_named_like_a_whiteout_is_refused(rootfs: Path, tmp_path: Path) -> None:
    (rootfs / "etc" / ".wh.conf").write_text("would delete etc/conf on unpack")
    with pytest.raises(LayerError, match="whiteout"):
        write_layer(rootfs, Changes(("etc/.wh.conf",)), tmp_path / "l")
    assert not (tmp_path / "l").exists()


def test_sockets_are_left_out(rootfs: Path, tmp_path: Path) -> None:
    import socket

    path = rootfs / "etc" / "agent.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        write_layer(rootfs, Changes(("etc/agent.sock", "etc/conf")), tmp_path / "l")
    assert [m.name for m in members(tmp_path / "l")] == ["etc", "etc/conf"]


def test_tar_bytes_are_those_tarfile_writes(rootfs: Path, tmp_path: Path) -> None:
    (rootfs / "etc" / "big").write_bytes(os.urandom(2 * 1024 * 1024 + 700))  # several buffers
    long_name = "n" * 150  # a PAX path record
    (rootfs / "etc" / long_name).write_text("long\n")
    os.setxattr(rootfs / "etc" / "conf", "user.kiln", b"carried")  # a PAX xattr record
    changes = Changes((*ALL.changed, "etc/big", f"etc/{long_name}"), ALL.deleted, ("usr",))
    out = tmp_path / "l"
    write_layer(rootfs, changes, out, compression="none")
    ours = out.read_bytes()
    again = io.BytesIO()
    with (
        tarfile.open(out) as read,
        tarfile.open(fileobj=again, mode="w|", format=tarfile.PAX_FORMAT) as write,
    ):
        for member in read:
            write.addfile(member, read.extractfile(member) if member.isreg() else None)
        names = read.getnames()
    assert "usr/.wh..wh..opq" in names and "etc/big" in names
    assert ours == again.getvalue()


def test_a_file_shorter_than_its_header_says_is_refused(
    rootfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.fs import layerwriter

    def grown(*args: object, **kwargs: object) -> tarfile.TarInfo | None:
        info = header_for(*args, **kwargs)  # type: ignore[arg-type]
        if info is not None and info.isreg():
            info.size += 1000  # as if the file shrank after its lstat
        return info

    header_for = layerwriter.header_for
    monkeypatch.setattr(layerwriter, "header_for", grown)
    with pytest.raises(LayerError, match="changed size"):
        write_layer(rootfs, Changes(("etc/conf",)), tmp_path / "l")
    assert not (tmp_path / "l").exists()


def test_followers_read_the_blob_while_it_is_written(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "data").write_bytes(os.urandom(5 * 1024 * 1024))
    finished: list[tuple[str, int]] = []
    growing = GrowingFile(1, on_finish=lambda digest, size: finished.append((digest, size)))
    seen: list[bytes] = []
    renamed = threading.Event()

    def follow() -> None:
        offset = 0
        try:
            while True:
                written = growing.wait(offset + 1)
                if offset < written:
                    seen.append(growing.read(offset, written - offset))
                    offset = written
                elif growing.result is not None:
                    break
            renamed.wait(30)
            seen.append(growing.read(0, 10))  # the descriptor outlives the file's name
        finally:
            growing.release()

    reader = threading.Thread(target=follow)
    reader.start()
    out = tmp_path / "l"
    info = write_layer(root, Changes(("data",)), out, growing=growing)
    blob = out.read_bytes()
    out.rename(tmp_path / "moved")
    renamed.set()
    reader.join(30)
    assert b"".join(seen[:-1]) == blob and seen[-1] == blob[:10]
    assert len(seen) > 2  # it read in several steps, as the blob grew
    assert growing.result == (info.digest, info.size) and finished == [growing.result]


def test_followers_hear_of_a_failed_layer(rootfs: Path, tmp_path: Path) -> None:
    growing = GrowingFile(1)
    os.symlink(str(tmp_path), rootfs / "evil")
    with pytest.raises(UnsafePathError):
        write_layer(rootfs, Changes(("evil/key",)), tmp_path / "l", growing=growing)
    with pytest.raises(LayerError, match="not completed"):
        growing.wait(1)
    growing.release()
