"""Fuzzing the layer code with hypothesis, as umoci fuzzes its own (issues 11 and 12.4).

Three properties, each over generated archives and over mutated ones:

- ``TarReader`` reads every archive ``tarfile`` writes exactly as ``tarfile`` reads it back
  (names, types, sizes, link names, modes, owners, mtimes, PAX records, contents), in whatever
  pieces the stream arrives; on damaged input it yields only what ``tarfile`` also yields and
  then raises ``LayerError``, never another exception, never hangs.
- ``apply_layer`` on a rootfs, fed archives made of hostile names (``..``, absolute paths,
  symlinks out of the root, hardlinks to outside, whiteouts through links), never writes,
  links or deletes anything outside the rootfs and raises nothing but kiln's own errors.
- The same for the layer store's overlay-format unpacker.

Bounded for CI: each property runs ``KILN_FUZZ_EXAMPLES`` examples (default 100; under a minute
for the whole file on a busy machine). A long campaign:
``KILN_FUZZ_EXAMPLES=20000 python3 -m pytest -q -p no:cacheprovider tests/fs/test_tar_fuzz.py``.
Crashes found become regression cases in ``test_found_by_fuzzing``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import signal
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.errors import KilnError, LayerError
from kiln.fs import LayerStore, apply_layer, remove_tree

from .test_tarreader import FORMATS, with_reader

#: Hypothesis warns that a failing example's repr (a whole archive) is large; it is meant to be.
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

EXAMPLES = int(os.environ.get("KILN_FUZZ_EXAMPLES", "100"))
#: Seconds one example may take before it counts as a hang (generous: CI machines are shared).
HANG_SECONDS = 20

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # hangs are caught by _no_hang; per-example timing is noise on shared CPUs
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # no example database written into the work tree
)


class Hang(Exception):
    """An example ran longer than HANG_SECONDS."""


@contextlib.contextmanager
def _no_hang() -> Iterator[None]:
    def alarm(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"no result after {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _tarfile_view(data: bytes) -> tuple[list[tuple[object, ...]], bool]:
    """What tarfile reads from ``data`` in stream mode, and whether it ended with an error.

    Any exception counts as tarfile refusing: the oracle's own crashes on garbage (it raises
    more than ``TarError``) are not what is tested here.
    """
    seen: list[tuple[object, ...]] = []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r|", errors="surrogateescape") as tar:
            for m in tar:
                source = tar.extractfile(m) if m.isreg() else None
                content = source.read() if source is not None else b""
                fields = (m.name, m.type, m.mode, m.uid, m.gid, m.size, m.mtime, m.linkname)
                seen.append((*fields, m.devmajor, m.devminor, dict(m.pax_headers), content))
    except Exception:
        return seen, True
    return seen, False


# --- generated archives ---------------------------------------------------------------------

_COMPONENT = st.one_of(
    st.sampled_from(["a", "b", "etc", "usr", ".wh.a", ".wh..wh..opq", "caf\u00e9", "x" * 100]),
    st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=12),
)
_NAME = st.lists(_COMPONENT, min_size=1, max_size=8).map("/".join)
_KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
          tarfile.BLKTYPE, tarfile.FIFOTYPE]  # fmt: skip
_PAX = st.dictionaries(
    st.sampled_from(["SCHILY.xattr.user.a", "SCHILY.xattr.user.b", "SCHILY.xattr.trusted.x",
                     "comment", "LIBARCHIVE.creationtime"]),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
    max_size=3,
)  # fmt: skip


@st.composite
def _member(draw: st.DrawFn, fmt: int) -> tuple[tarfile.TarInfo, bytes]:
    big = fmt != tarfile.USTAR_FORMAT
    info = tarfile.TarInfo(draw(_NAME))
    info.type = draw(st.sampled_from(_KINDS))
    info.mode = draw(st.integers(0, 0o7777))
    info.uid = draw(st.integers(0, 2**40 if big else 0o7777777))
    info.gid = draw(st.integers(0, 2**40 if big else 0o7777777))
    info.mtime = draw(st.integers(-(2**34) if big else 0, 2**34 if big else 0o77777777777))
    if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
        info.linkname = draw(st.one_of(_NAME, st.sampled_from(["/", "..", "../../x", "/etc"])))
    if info.type in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor = draw(st.integers(0, 0o7777777))
        info.devminor = draw(st.integers(0, 0o7777777))
    if fmt == tarfile.PAX_FORMAT:
        info.pax_headers = draw(_PAX)
    data = draw(st.binary(max_size=1500)) if info.type == tarfile.REGTYPE else b""
    info.size = len(data)
    return info, data


@st.composite
def archives(draw: st.DrawFn) -> bytes:
    """A tar that tarfile writes, in one of its three formats (members tarfile cannot write in
    that format are left out)."""
    fmt = draw(st.sampled_from(FORMATS))
    members = draw(st.lists(_member(fmt), max_size=8))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, errors="surrogateescape") as tar:
        for info, data in members:
            with contextlib.suppress(ValueError):  # e.g. a name too long for ustar
                tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return buffer.getvalue()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A generated archive with damage: bytes overwritten (often in headers), cut short,
    blocks repeated or dropped, garbage inserted."""
    data = bytearray(draw(archives()))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["byte", "header", "digits", "cut", "repeat", "insert"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "byte":
            data[at] = draw(st.integers(0, 255))
        elif action in ("header", "digits"):
            block = (at // 512) * 512
            offset = draw(st.sampled_from([0, 100, 108, 116, 124, 136, 148, 156, 157, 257, 345]))
            width = draw(st.integers(1, 12))
            alphabet = b"01234567 \x00" if action == "digits" else bytes(range(256))
            chunk = bytes(draw(st.lists(st.sampled_from(alphabet), min_size=width,
                                        max_size=width)))  # fmt: skip
            start = min(block + offset, len(data))
            data[start : start + width] = chunk
        elif action == "cut":
            del data[at:]
        elif action == "repeat":
            block = (at // 512) * 512
            data[block:block] = data[block : block + 512]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=600))
    return bytes(data)


def _reader_agrees(data: bytes, chunk: int | None) -> None:
    """TarReader yields a prefix of what tarfile yields, all of it when it reports no error,
    and fails only with LayerError (``with_reader`` lets any other exception through)."""
    expected, tar_refused = _tarfile_view(data)
    with _no_hang():
        got, error = with_reader(data, chunk)
    assert got == expected[: len(got)]
    if error is None:
        assert got == expected and not tar_refused
    else:
        assert error.startswith("malformed layer tar"), error  # kiln's own wording


_CHUNKS = st.sampled_from([None, 1, 7, 512, 4096])


@FUZZ
@given(data=archives(), chunk=_CHUNKS)
def test_reader_reads_generated_archives_as_tarfile_does(data: bytes, chunk: int | None) -> None:
    expected, tar_refused = _tarfile_view(data)
    if tar_refused:  # tarfile cannot always read what it wrote; then agreeing up to it is all
        _reader_agrees(data, chunk)
        return
    with _no_hang():
        got, error = with_reader(data, chunk)
    assert error is None, error
    assert got == expected


@FUZZ
@given(data=mutated(), chunk=_CHUNKS)
def test_reader_on_damaged_archives_agrees_or_refuses(data: bytes, chunk: int | None) -> None:
    _reader_agrees(data, chunk)


@FUZZ
@given(data=st.binary(max_size=3000), chunk=_CHUNKS)
def test_reader_on_random_bytes_agrees_or_refuses(data: bytes, chunk: int | None) -> None:
    _reader_agrees(data, chunk)


# --- hostile archives onto a rootfs -----------------------------------------------------------

_HOSTILE_PART = st.sampled_from(
    ["a", "b", "c", "..", ".", "", ".wh.a", ".wh.b", ".wh..wh..opq", ".wh...", ".wh.."]
)
_HOSTILE_NAME = st.one_of(
    st.lists(_HOSTILE_PART, min_size=1, max_size=5).map("/".join),
    st.sampled_from(["/a", "/../a", "../outside/f", "a/../../outside", "./", "/"]),
)
_LINK_TARGET = st.one_of(
    _HOSTILE_NAME,
    st.sampled_from(["/", "..", "../..", "../../outside", "/../../outside", "../outside/f",
                     "/proc/self/root", "a", "a/b", "outside"]),
)  # fmt: skip


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    """PAX archives of directories, files, symlinks and hardlinks with hostile names/targets."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for _ in range(draw(st.integers(1, 10))):
            info = tarfile.TarInfo(draw(_HOSTILE_NAME))
            info.type = draw(st.sampled_from([tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE,
                                              tarfile.LNKTYPE, tarfile.FIFOTYPE]))  # fmt: skip
            info.mode = draw(st.sampled_from([0o644, 0o755, 0o000, 0o4755, 0o1777]))
            info.mtime = 1_600_000_000
            data = b""
            if info.type in (tarfile.SYMTYPE, tarfile.LNKTYPE):
                info.linkname = draw(_LINK_TARGET)
            elif info.type == tarfile.REGTYPE:
                data = draw(st.sampled_from([b"", b"hostile\n"]))
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return buffer.getvalue()


def _state(world: Path, rootfs: Path) -> dict[str, tuple[object, ...]]:
    """Everything under ``world`` except the rootfs: type, mode, links, size, content, target."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(world):
        if Path(dirpath) == rootfs.parent:
            dirnames[:] = [d for d in dirnames if d != rootfs.name]
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st_ = os.lstat(path)
            extra: object = None
            if stat.S_ISREG(st_.st_mode):
                extra = path.read_bytes()
            elif stat.S_ISLNK(st_.st_mode):
                extra = os.readlink(path)
            out[str(path.relative_to(world))] = (st_.st_mode, st_.st_nlink, st_.st_size,
                                                 st_.st_mtime_ns, extra)  # fmt: skip
    return out


class _World:
    """A directory holding the rootfs (two levels down, so ``..`` has somewhere to go) and
    things outside it that a hostile layer would like to reach."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rootfs = root / "a" / "rootfs"

    def reset(self) -> None:
        remove_tree(self.root, ignore_errors=True)
        self.rootfs.mkdir(parents=True)
        (self.root / "outside").mkdir()
        (self.root / "outside" / "f").write_bytes(b"outside, do not touch\n")
        (self.root / "a" / "a").write_bytes(b"beside the rootfs\n")
        os.symlink("outside", self.root / "link")


def _unpack_stays_inside(world: _World, data: bytes, store: bool) -> None:
    world.reset()
    before = _state(world.root, world.rootfs)
    with _no_hang():
        try:
            if store:
                digest = "sha256:" + hashlib.sha256(data).hexdigest()
                LayerStore(world.rootfs).ensure(digest, lambda: io.BytesIO(data))  # type: ignore[arg-type,return-value]
            else:
                apply_layer(io.BytesIO(data), world.rootfs)
        except KilnError:
            pass  # refusing is fine; anything else propagates and fails the test
    assert _state(world.root, world.rootfs) == before


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> _World:
    return _World(tmp_path_factory.mktemp("fuzz") / "world")


@pytest.mark.root
@FUZZ
@given(data=st.one_of(hostile(), hostile().map(lambda d: d[: len(d) // 2])))
def test_apply_layer_never_leaves_the_rootfs(world: _World, data: bytes) -> None:
    _unpack_stays_inside(world, data, store=False)


@pytest.mark.root
@FUZZ
@given(data=st.one_of(hostile(), mutated()))
def test_layer_store_never_leaves_its_directory(world: _World, data: bytes) -> None:
    _unpack_stays_inside(world, data, store=True)


@pytest.mark.root
@FUZZ
@given(data=mutated())
def test_apply_layer_on_damaged_archives_raises_only_kiln_errors(
    world: _World, data: bytes
) -> None:
    _unpack_stays_inside(world, data, store=False)


# --- regressions ----------------------------------------------------------------------------


def _one(fmt: int = tarfile.GNU_FORMAT, **fields: object) -> bytes:
    info = tarfile.TarInfo(str(fields.pop("name", "n")))
    for key, value in fields.items():
        setattr(info, key, value)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        tar.addfile(info)
    return buffer.getvalue()


def test_found_by_fuzzing_a_ustar_directory_name_that_is_all_prefix() -> None:
    """tarfile splits a 101-byte directory name into a 100-byte prefix and an empty name, and
    reads it back without the trailing slash; TarReader kept the slash."""
    data = _one(tarfile.USTAR_FORMAT, name="x" * 100, type=tarfile.DIRTYPE)
    expected, refused = _tarfile_view(data)
    assert not refused and expected[0][0] == "x" * 100
    assert with_reader(data) == (expected, None)


@pytest.mark.root
@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"type": tarfile.CHRTYPE, "devmajor": 0o7777777, "devminor": 1}, "Invalid argument"),
        ({"uid": 2**40}, "uid"),
    ],
    ids=["device-number-the-kernel-refuses", "uid-beyond-32-bits"],
)
def test_found_by_fuzzing_entries_the_system_refuses(
    tmp_path: Path, fields: dict[str, object], reason: str
) -> None:
    """Once an OSError / OverflowError traceback; now a LayerError naming the entry."""
    with pytest.raises(LayerError, match=f"cannot unpack layer entry 'n': .*{reason}"):
        apply_layer(io.BytesIO(_one(**fields)), tmp_path)
