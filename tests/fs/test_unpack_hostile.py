"""Hostile layer tars must never write, link or delete outside the rootfs, nor protected paths."""

from __future__ import annotations

import contextlib
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiln.cli.hints import render_for_cli
from kiln.errors import LayerError, UnsafePathError
from kiln.fs import ProtectedPaths, apply_layer

from .tarbuild import dir_, entry, hard, make_tar, sym

SENTINEL = b"outside, do not touch\n"


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """A rootfs two levels below tmp_path, and a sentinel file outside it."""
    rootfs = tmp_path / "a" / "rootfs"
    rootfs.mkdir(parents=True)
    sentinel = tmp_path / "sentinel"
    sentinel.write_bytes(SENTINEL)
    return rootfs, sentinel


def assert_untouched(sentinel: Path) -> None:
    assert sentinel.read_bytes() == SENTINEL
    assert sentinel.stat().st_nlink == 1
    assert sorted(p.name for p in sentinel.parent.iterdir()) == ["a", "sentinel"]


def test_dotdot_entry_is_rejected(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(entry("../../sentinel", data=b"pwned"))
    with pytest.raises(UnsafePathError, match="climbs out"):
        apply_layer(tar, rootfs)
    assert_untouched(sentinel)


def test_dotdot_inside_is_allowed(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    apply_layer(make_tar(entry("a/b/../c", data=b"ok")), rootfs)
    assert (rootfs / "a" / "c").read_bytes() == b"ok"
    assert_untouched(sentinel)


def test_absolute_name_is_made_relative(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    apply_layer(make_tar(entry(str(sentinel), data=b"pwned")), rootfs)
    assert (rootfs / str(sentinel).lstrip("/")).read_bytes() == b"pwned"
    assert_untouched(sentinel)


@pytest.mark.parametrize("target", ["/", "../../..", "/../../.."])
def test_write_through_symlink_is_rerooted(world: tuple[Path, Path], target: str) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("evil", target), entry("evil/sentinel", data=b"pwned"))
    apply_layer(tar, rootfs)
    assert (rootfs / "sentinel").read_bytes() == b"pwned"
    assert_untouched(sentinel)


def test_nested_absolute_symlink_restarts_at_rootfs(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("a/b/evil", "/"), entry("a/b/evil/x", data=b"pwned"))
    apply_layer(tar, rootfs)
    assert (rootfs / "x").read_bytes() == b"pwned"
    assert not (rootfs / "a" / "b" / "x").exists()
    assert_untouched(sentinel)


def test_symlink_to_outside_dir_then_nested_write(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("evil", str(sentinel.parent)), entry("evil/sentinel", data=b"pwned"))
    apply_layer(tar, rootfs)
    # the absolute target is re-rooted: rootfs/<tmp_path>/sentinel
    assert (rootfs / str(sentinel).lstrip("/")).read_bytes() == b"pwned"
    assert_untouched(sentinel)


def test_file_replaces_symlink_instead_of_writing_through(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    os.symlink(str(sentinel), rootfs / "x")  # planted by a lower layer
    apply_layer(make_tar(entry("x", data=b"pwned")), rootfs)
    assert not (rootfs / "x").is_symlink()
    assert (rootfs / "x").read_bytes() == b"pwned"
    assert_untouched(sentinel)


def test_hardlink_outside_is_rejected(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    message = r"hardlink 'passwd' points at '\.\./\.\./sentinel', which climbs out"
    with pytest.raises(UnsafePathError, match=message):
        apply_layer(make_tar(hard("passwd", "../../sentinel")), rootfs)
    assert_untouched(sentinel)


def test_hardlink_through_symlink_stays_inside(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    (rootfs / "sentinel").write_bytes(b"inside")
    tar = make_tar(sym("evil", "../../.."), hard("link", "evil/sentinel"))
    apply_layer(tar, rootfs)
    assert (rootfs / "link").samefile(rootfs / "sentinel")
    assert_untouched(sentinel)


def test_hardlink_to_missing_target_is_an_error(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("evil", "/"), hard("link", f"evil/{sentinel}"))
    with pytest.raises(LayerError, match="missing"):
        apply_layer(tar, rootfs)
    assert_untouched(sentinel)


def test_hardlink_to_symlink_links_the_symlink_itself(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    tar = make_tar(sym("s", str(sentinel)), hard("h", "s"))
    apply_layer(tar, rootfs)
    assert (rootfs / "h").is_symlink()
    assert os.lstat(rootfs / "h").st_ino == os.lstat(rootfs / "s").st_ino
    assert_untouched(sentinel)


def test_whiteout_through_symlink_stays_inside(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    (rootfs / "sentinel").write_bytes(b"inside")
    apply_layer(make_tar(sym("evil", "../../.."), entry("evil/.wh.sentinel")), rootfs)
    assert not (rootfs / "sentinel").exists()
    assert_untouched(sentinel)


@pytest.mark.parametrize("name", [".wh..", ".wh...", "../.wh.sentinel", "a/.wh."])
def test_bad_whiteouts_are_rejected(world: tuple[Path, Path], name: str) -> None:
    rootfs, sentinel = world
    with pytest.raises(UnsafePathError):
        apply_layer(make_tar(entry(name)), rootfs)
    assert_untouched(sentinel)


def test_opaque_through_symlink_only_clears_inside(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    (rootfs / "lower").write_bytes(b"from a lower layer")
    tar = make_tar(sym("evil", "../.."), entry("evil/.wh..wh..opq"))
    apply_layer(tar, rootfs)  # a naive join would empty tmp_path, sentinel included
    assert not (rootfs / "lower").exists()
    assert (rootfs / "evil").is_symlink()
    assert_untouched(sentinel)


def test_root_replaced_by_file_is_rejected(world: tuple[Path, Path]) -> None:
    rootfs, sentinel = world
    with pytest.raises(UnsafePathError):
        apply_layer(make_tar(entry("./", data=b"x")), rootfs)
    assert rootfs.is_dir()
    assert_untouched(sentinel)


# --- protected paths (the inplace isolation: the rootfs is `/`, kiln's files live in it) -------


def _protected_world(tmp_path: Path) -> tuple[Path, ProtectedPaths]:
    """A rootfs holding kiln's dir, an output mount, `/var/run -> /run` with a secret, and more."""
    root = tmp_path / "root"
    for rel, text in {
        "kiln/tmp/victim": "kiln's",
        "kiln/bin/kiln": "kiln's code",
        "out/app.tar": "an output",
        "run/secrets/token": "a secret",
        "var/lib/old": "lower layer",
        "usr/bin/tool": "tool",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "var" / "run").symlink_to("/run")
    protected = ProtectedPaths.under(str(root), ["kiln", "out", "var/run"])
    return root, protected


def _snapshot(root: Path, protected: ProtectedPaths) -> dict[str, str]:
    """Every protected file and link with its content or target."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not protected.covers(rel):
            continue
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_text()
        else:
            found[rel] = "<dir>"
    return found


def test_protected_paths_include_where_they_really_are(tmp_path: Path) -> None:
    _, protected = _protected_world(tmp_path)
    assert protected.paths == {"kiln", "out", "var/run", "run"}


@pytest.mark.parametrize(
    ("entries", "reached"),
    [
        ([sym("v", "/kiln/tmp"), entry("v/victim", data=b"pwned")], "kiln/tmp/victim"),
        ([sym("x", "/kiln"), entry("x/file", data=b"pwned")], "kiln/file"),
        ([sym("x", "/kiln"), entry("x/new/deep/file", data=b"pwned")], "kiln/new/deep/file"),
        ([sym("x", "../../kiln/bin"), sym("x/kiln", "/bin/sh")], "kiln/bin/kiln"),
        ([sym("x", "/kiln"), dir_("x/bin")], "kiln/bin"),
        ([sym("o", "/out"), entry("o/app.tar", data=b"pwned")], "out/app.tar"),
        ([sym("s", "var/run/secrets"), entry("s/token", data=b"pwned")], "run/secrets/token"),
        ([sym("w", "/kiln"), entry("w/.wh..wh..opq")], "kiln"),
        ([sym("w", "/kiln/bin"), entry("w/.wh.kiln")], "kiln/bin/kiln"),
        ([sym("w", "/"), entry("w/.wh.kiln")], "kiln"),
        ([sym("x", "/kiln"), hard("h", "x/bin/kiln")], "kiln/bin/kiln"),
        ([sym("a", "b"), sym("b", "/kiln/."), entry("a/tmp/victim", data=b"x")], "kiln/tmp/victim"),
    ],
    ids=[
        "file-through-link", "new-file-in-kiln-dir", "new-dirs-in-kiln-dir", "symlink-over-kiln",
        "dir-through-link", "output-mount", "resolved-var-run", "opaque-through-link",
        "whiteout-through-link", "whiteout-through-root-link", "hardlink-out", "link-chain",
    ],
)  # fmt: skip
def test_entries_resolving_into_protected_paths_are_refused(
    tmp_path: Path, entries: list[tuple[tarfile.TarInfo, bytes]], reached: str
) -> None:
    root, protected = _protected_world(tmp_path)
    before = _snapshot(root, protected)
    with pytest.raises(UnsafePathError, match=f"resolves to /{reached}, which is protected"):
        apply_layer(make_tar(*entries), root, protected=protected)
    assert _snapshot(root, protected) == before


def test_replacing_a_directory_that_holds_protected_paths_is_refused(tmp_path: Path) -> None:
    root, protected = _protected_world(tmp_path)
    before = _snapshot(root, protected)
    tar = make_tar(entry("var", data=b"a file where a directory holds /var/run"))
    with pytest.raises(
        UnsafePathError, match="would replace /var, which holds protected paths"
    ) as info:
        apply_layer(tar, root, protected=protected)
    assert _snapshot(root, protected) == before
    # The hint in the caller's language: keyword arguments here, flags on the command line.
    assert "use isolation='chroot' or isolation='namespaces'" in str(info.value)
    assert "use --isolation chroot or --isolation namespaces" in render_for_cli(info.value)


def test_entries_named_inside_protected_paths_are_dropped(tmp_path: Path) -> None:
    root, protected = _protected_world(tmp_path)
    before = _snapshot(root, protected)
    tar = make_tar(
        entry("kiln/bin/kiln", data=b"replaced"),
        entry("/kiln/tmp/victim", data=b"replaced"),
        dir_("out"),
        entry(".wh.kiln"),
        entry("kiln/.wh..wh..opq"),
        hard("usr/bin/k", "kiln/bin/kiln"),
        sym("var/run", "/elsewhere"),
        entry("usr/bin/new", data=b"an ordinary file"),
    )
    apply_layer(tar, root, protected=protected)
    assert _snapshot(root, protected) == before
    assert (root / "usr" / "bin" / "new").read_bytes() == b"an ordinary file"
    assert not (root / "usr" / "bin" / "k").exists()


def test_whiteout_and_opaque_above_protected_paths_keep_them(tmp_path: Path) -> None:
    root, protected = _protected_world(tmp_path)
    before = _snapshot(root, protected)
    apply_layer(make_tar(entry(".wh.var"), entry("run/.wh..wh..opq")), root, protected=protected)
    assert _snapshot(root, protected) == before
    assert sorted(p.name for p in (root / "var").iterdir()) == ["run"]  # var/lib went
    apply_layer(make_tar(entry(".wh..wh..opq"), entry("etc/new")), root, protected=protected)
    assert sorted(p.name for p in root.iterdir()) == ["etc", "kiln", "out", "run", "var"]
    assert _snapshot(root, protected) == before


_NAMES = ["a", "b", "a/b", "b/c", "kiln", "a/kiln", "b/tmp", "c"]
_TARGETS = ["/kiln", "/kiln/tmp", "kiln/bin", "../kiln", "/", "..", "a", "/out", "/var/run"]


_KINDS = ["file", "dir", "sym", "hard", "wh", "opq"]
#: (kind, name, link target): readable when hypothesis reports a falsifying example
_Spec = tuple[str, str, str]
_SPECS = st.tuples(
    st.sampled_from(_KINDS),
    st.sampled_from(_NAMES),
    st.sampled_from([*_TARGETS, *_NAMES, "b/tmp/victim", "a/bin/kiln"]),
)


def _entry_of(spec: _Spec) -> tuple[tarfile.TarInfo, bytes]:
    kind, name, target = spec
    head, _, base = name.rpartition("/")
    if kind == "file":
        return entry(name, data=b"hostile")
    if kind == "dir":
        return dir_(name)
    if kind == "sym":
        return sym(name, target)
    if kind == "hard":
        return hard(name, target.lstrip("/"))
    if kind == "wh":
        return entry(f"{head}/.wh.{base}" if head else f".wh.{base}")
    return entry(f"{name}/.wh..wh..opq")


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(layers=st.lists(st.lists(_SPECS, min_size=1, max_size=8), min_size=1, max_size=3))
def test_no_layer_sequence_changes_protected_paths(
    tmp_path_factory: pytest.TempPathFactory, layers: list[list[_Spec]]
) -> None:
    """Any mix of links, writes, hardlinks, whiteouts and opaque dirs: refused or harmless."""
    top = tmp_path_factory.mktemp("fuzz")
    root, protected = _protected_world(top)
    (top / "sentinel").write_bytes(SENTINEL)  # outside the rootfs altogether
    before = _snapshot(root, protected)
    for layer in layers:
        # refused (or malformed, e.g. a hardlink to a missing file) is fine; no other error is
        with contextlib.suppress(UnsafePathError, LayerError):
            apply_layer(make_tar(*map(_entry_of, layer)), root, protected=protected)
        assert _snapshot(root, protected) == before
        assert (top / "sentinel").read_bytes() == SENTINEL
        assert sorted(p.name for p in top.iterdir()) == ["root", "sentinel"]
