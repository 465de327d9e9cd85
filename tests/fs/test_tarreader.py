"""TarReader reads every layer tar exactly as tarfile does (differential tests), or refuses it."""

from __future__ import annotations

import io
import os
import random
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import pytest

from kiln.errors import LayerError
from kiln.fs.tarreader import REGULAR_TYPES, TarEntry, TarReader

FORMATS = [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]
Seen = list[tuple[object, ...]]


def _info(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 1_600_000_000
    for key, value in fields.items():
        setattr(info, key, value)
    return info


def _tar(members: list[tuple[tarfile.TarInfo, bytes]], fmt: int, **kw: object) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt, **kw) as tar:  # type: ignore[call-overload]
        for info, data in members:
            if info.isreg():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return buf.getvalue()


def _key(entry: tarfile.TarInfo | TarEntry, data: bytes) -> tuple[object, ...]:
    """Everything unpacking reads from an entry."""
    e = entry
    fields = (e.name, e.type, e.mode, e.uid, e.gid, e.size, e.mtime, e.linkname)
    return (*fields, e.devmajor, e.devminor, dict(e.pax_headers), data)


def with_tarfile(data: bytes) -> tuple[Seen, str | None]:
    """Entries as tarfile reads them in stream mode (what kiln used before), and its error."""
    seen: Seen = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|", errors="surrogateescape") as tar:
            for m in tar:
                source = tar.extractfile(m) if m.isreg() else None
                content = source.read() if source is not None else b""
                seen.append(_key(m, content))
    except (tarfile.TarError, UnicodeDecodeError) as exc:
        return seen, str(exc)
    return seen, None


def with_reader(data: bytes, chunk: int | None = None) -> tuple[Seen, str | None]:
    """The same with TarReader (reading the stream in ``chunk``-byte pieces if given)."""
    seen: Seen = []
    stream = _Trickle(data, chunk) if chunk else io.BytesIO(data)
    with tempfile.TemporaryFile() as scratch:
        fd = scratch.fileno()
        try:
            reader = TarReader(stream)  # type: ignore[arg-type]
            for e in reader:
                content = b""
                if e.type in REGULAR_TYPES:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    assert reader.copy_to(fd) == e.size
                    content = os.pread(fd, e.size + 1, 0)
                seen.append(_key(e, content))
        except LayerError as exc:
            return seen, str(exc)
    return seen, None


class _Trickle(io.RawIOBase):
    """A stream that never returns more than ``chunk`` bytes per read (like a pipe)."""

    def __init__(self, data: bytes, chunk: int) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._chunk = chunk

    def read(self, size: int = -1) -> bytes:  # type: ignore[override]
        size = self._chunk if size < 0 else min(size, self._chunk)
        out, self._data = bytes(self._data[:size]), self._data[size:]
        return out


def assert_same(data: bytes) -> Seen:
    expected, error = with_tarfile(data)
    assert error is None, error
    for chunk in (None, 1, 700, 4096):
        got, got_error = with_reader(data, chunk)
        assert got_error is None, got_error
        assert got == expected
    return expected


def _everything() -> list[tuple[tarfile.TarInfo, bytes]]:
    device = _info("dev/null", tarfile.CHRTYPE, mode=0o666, devmajor=1, devminor=3)
    return [
        (_info("etc/", tarfile.DIRTYPE, mode=0o755), b""),
        (_info("etc/hosts", mode=0o644, uid=0, gid=0), b"127.0.0.1 localhost\n"),
        (_info("./usr/bin/tool", mode=0o4755, uid=1000, gid=1001), b"#!/bin/sh\n" * 100),
        (_info("usr/bin/link", tarfile.LNKTYPE, linkname="usr/bin/tool"), b""),
        (_info("usr/bin/sh", tarfile.SYMTYPE, linkname="/bin/busybox", mode=0o777), b""),
        (device, b""),
        (_info("run/fifo", tarfile.FIFOTYPE, mode=0o600), b""),
        (_info("empty"), b""),
        (_info("exact", mode=0o600), b"x" * 512),
        (_info("big"), bytes(range(256)) * 5000),
        (_info("a" * 99), b"99"),
        (_info("d" * 60 + "/" + "f" * 80), b"prefix-able"),
    ]


@pytest.mark.parametrize("fmt", FORMATS)
def test_common_entries_in_every_format(fmt: int) -> None:
    seen = assert_same(_tar(_everything(), fmt))
    assert len(seen) == len(_everything())


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_names_links_and_undecodable_bytes(fmt: int) -> None:
    long_dir = "/".join(["directory-name-of-some-length"] * 10)
    long_file = long_dir + "/file-with-a-long-name-" + "x" * 120
    members = [
        (_info(long_dir + "/", tarfile.DIRTYPE, mode=0o755), b""),
        (_info(long_file), b"long"),
        (_info("short", tarfile.SYMTYPE, linkname="t" * 300), b""),
        (_info("hard", tarfile.LNKTYPE, linkname=long_file), b""),
        (_info("caf\u00e9/\u00e9t\u00e9"), b"utf8"),
        (_info("raw-\udcff\udcfe"), b"not utf-8"),
    ]
    assert_same(_tar(members, fmt, errors="surrogateescape"))


def test_pax_records_override_fields() -> None:
    cap = b"\x01\x00\x00\x02\x00\x20\x00\x00" + bytes(12)
    records = {
        "SCHILY.xattr.user.k": "v",
        "SCHILY.xattr.security.capability": cap.decode("utf-8", "surrogateescape"),
        "mtime": "1600000000.123456789",
        "comment": "hi",
    }
    members = [
        (_info("f", pax_headers=records), b"data"),
        (_info("big-ids", uid=3_000_000, gid=4_000_000), b"x"),
        (_info("negative-time", mtime=-1), b""),
        (_info("dir-with-pax", tarfile.DIRTYPE, pax_headers={"path": "renamed///"}), b""),
        (_info("bad-number", pax_headers={"uid": "nope", "mtime": "x"}), b""),
    ]
    assert_same(_tar(members, tarfile.PAX_FORMAT))


def test_gnu_base256_numbers() -> None:
    members = [(_info("big-ids", uid=3_000_000_000, gid=2**40, mtime=2**40), b"x"),
               (_info("neg", mtime=-(2**40)), b"")]  # fmt: skip
    data = _tar(members, tarfile.GNU_FORMAT)
    assert_same(data)


def _pax_block(records: dict[str, str], kind: bytes, name: str = "pax") -> bytes:
    body = b""
    for key, value in records.items():
        record = f" {key}={value}\n".encode("utf-8", "surrogateescape")
        length = len(record) + len(str(len(record)))
        length = len(record) + len(str(length))
        body += str(length).encode() + record
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, len(body)
    header = info.tobuf(tarfile.USTAR_FORMAT)
    return header + body + bytes(-len(body) % 512)


def _plain(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **fields: object) -> bytes:
    info = _info(name, kind, size=len(data), **fields)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


END = bytes(1024)


def test_global_headers_apply_to_later_entries() -> None:
    data = (
        _plain("before", b"1")
        + _pax_block({"SCHILY.xattr.user.g": "global", "mtime": "5.5", "comment": "c"}, b"g")
        + _plain("after", b"2")
        + _pax_block({"SCHILY.xattr.user.l": "local", "path": "local-name"}, b"x")
        + _plain("ignored-name", b"3")
        + _pax_block({"uid": "7"}, b"g")
        + _plain("last", b"4")
        + END
    )
    seen = assert_same(data)
    assert [entry[0] for entry in seen] == ["before", "after", "local-name", "last"]


def test_hdrcharset_binary_and_chained_extended_headers() -> None:
    gnu_long = _info("././@LongLink", b"L", size=21)
    data = (
        _pax_block({"hdrcharset": "BINARY", "path": "bin\udcff"}, b"x")
        + _plain("short", b"1")
        + _pax_block({"SCHILY.xattr.user.a": "1", "path": "from-pax"}, b"x")
        + gnu_long.tobuf(tarfile.USTAR_FORMAT) + b"long-name-from-gnu-L\x00" + bytes(491)
        + _plain("header-name", b"2")
        + _pax_block({"size": "3"}, b"x")
        + _plain("resized", b"abc")[:512] + b"abc" + bytes(509)
        + END
    )  # fmt: skip
    assert_same(data)


def test_v7_directory_and_ustar_prefix() -> None:
    v7 = _info("olddir/", tarfile.AREGTYPE)
    prefixed = _info("p" * 100 + "/" + "n" * 90, tarfile.DIRTYPE)
    data = v7.tobuf(tarfile.USTAR_FORMAT) + prefixed.tobuf(tarfile.USTAR_FORMAT) + END
    seen = assert_same(data)
    assert seen[0][:2] == ("olddir", tarfile.DIRTYPE)


def test_unknown_type_is_skipped_as_data() -> None:
    data = _plain("volume", b"v" * 700, b"V") + _plain("after", b"ok") + END
    seen = assert_same(data)
    assert [entry[1] for entry in seen] == [b"V", b"0"]


def test_end_of_stream_without_end_blocks_and_trailing_garbage_after_them() -> None:
    assert_same(_plain("f", b"x"))
    assert_same(_plain("f", b"x") + END + b"garbage that is never read" * 50)
    assert assert_same(END) == []


@pytest.mark.skipif(shutil.which("tar") is None, reason="needs GNU tar")
@pytest.mark.parametrize("options", [["--format=gnu"], ["--format=posix"],
                                     ["--format=posix", "--sparse-version=0.1"]])  # fmt: skip
def test_sparse_files_go_through_tarfile(tmp_path: Path, options: list[str]) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "before").write_bytes(b"before")
    with open(src / "sparse", "wb") as f:
        f.truncate(3 << 20)
        f.seek(1 << 20)
        f.write(b"island")
    (src / "after").write_bytes(b"after")
    archive = tmp_path / "sparse.tar"
    subprocess.run(["tar", *options, "-S", "--sort=name", "-cf", str(archive), "-C", str(src), "."],
                   check=True)  # fmt: skip
    seen = assert_same(archive.read_bytes())
    assert [entry[0] for entry in seen] == ["./", "./after", "./before", "./sparse"] or [
        entry[0] for entry in seen
    ] == [".", "./after", "./before", "./sparse"]
    assert seen[-1][-1] == bytes(1 << 20) + b"island" + bytes((2 << 20) - 6)


# --- malformed input --------------------------------------------------------------------------


def test_malformed_first_header_and_empty_stream_are_errors() -> None:
    for data in (b"", b"not a tar" * 100, _plain("f", b"x")[:300]):
        assert with_tarfile(data)[1] is not None
        assert with_reader(data)[1] is not None


def test_truncated_data_is_an_error() -> None:
    data = _plain("f", b"x" * 5000)[:2000]
    assert with_tarfile(data)[1] is not None
    assert with_reader(data)[1] is not None


def test_damaged_later_header_is_an_error_not_a_silent_end() -> None:
    good = _plain("a", b"1")
    bad = bytearray(_plain("b", b"2"))
    bad[0] ^= 0x40  # checksum no longer matches
    data = good + bytes(bad) + _plain("c", b"3") + END
    tar_seen, tar_error = with_tarfile(data)
    assert [entry[0] for entry in tar_seen] == ["a"] and tar_error is None  # tarfile stops
    seen, error = with_reader(data)
    assert [entry[0] for entry in seen] == ["a"] and error is not None and "checksum" in error


def test_huge_extended_header_is_refused() -> None:
    info = _info("././@LongLink", b"L", size=1 << 30)
    seen, error = with_reader(info.tobuf(tarfile.USTAR_FORMAT) + END)
    assert seen == [] and error is not None and "too large" in error


def test_random_damage_never_yields_a_different_entry() -> None:
    """Flip bytes of a valid tar: whatever TarReader yields, tarfile yields too (or it errs)."""
    rng = random.Random(42)
    small = [member for member in _everything() if member[0].name != "big"]
    base = _tar(small, tarfile.PAX_FORMAT)[:-1024] + _tar(
        [(_info("g" * 120), b"gnu long"), (_info("n", uid=2**33), b"b256")], tarfile.GNU_FORMAT
    )
    outcomes = set()
    for _ in range(400):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        expected, tar_error = with_tarfile(bytes(data))
        got, error = with_reader(bytes(data))
        assert got == expected[: len(got)]
        if error is None:
            assert got == expected and tar_error is None
            outcomes.add("same")
        elif tar_error is None:
            assert len(got) == len(expected)  # tarfile ended silently where TarReader objects
            outcomes.add("stricter")
        else:
            outcomes.add("both refuse")
    assert outcomes == {"same", "stricter", "both refuse"}  # the damage reached every case
