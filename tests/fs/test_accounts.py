"""USER and --chown resolution against the image's /etc/passwd and /etc/group."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kiln.errors import BuildError
from kiln.fs import lookup_chown, lookup_file_owner, lookup_home, lookup_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
app:x:1000:1000::/home/app:/bin/sh
svc:x:1001:50::/srv:/bin/false
broken:x:notanumber:1
"""
GROUP = """\
root:x:0:
wheel:x:10:app,root
staff:x:50:
app:x:1000:
docker:x:999:app
audio:x:29:svc
"""


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text(PASSWD)
    (tmp_path / "etc" / "group").write_text(GROUP)
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("root", (0, 0, (10,))),
        ("", (0, 0, (10,))),
        ("0", (0, 0, (10,))),
        ("app", (1000, 1000, (10, 999))),
        ("1000", (1000, 1000, (10, 999))),
        ("svc", (1001, 50, (29,))),
        ("4242", (4242, 0, ())),  # numeric uid without passwd entry: gid 0
        ("app:staff", (1000, 50, ())),  # explicit group: no supplementary groups
        ("app:50", (1000, 50, ())),
        ("app:777", (1000, 777, ())),
        ("4242:4343", (4242, 4343, ())),
        ("4242:wheel", (4242, 10, ())),
    ],
)
def test_lookup_user(rootfs: Path, spec: str, expected: tuple[int, int, tuple[int, ...]]) -> None:
    assert lookup_user(rootfs, spec) == expected


def test_unknown_user_message(rootfs: Path) -> None:
    with pytest.raises(BuildError) as err:
        lookup_user(rootfs, "nobody")
    assert str(err.value) == "unable to find user nobody: no matching entries in passwd file"


def test_unknown_group(rootfs: Path) -> None:
    with pytest.raises(BuildError, match="unable to find group nogroup"):
        lookup_user(rootfs, "app:nogroup")


def test_numeric_specs_need_no_files(tmp_path: Path) -> None:
    assert lookup_user(tmp_path, "12:34") == (12, 34, ())
    assert lookup_chown(tmp_path, "12") == (12, 12)
    with pytest.raises(BuildError):
        lookup_user(tmp_path, "root")


def test_out_of_range_id(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="out of range"):
        lookup_user(tmp_path, "99999999999")


def test_files_are_read_through_secure_join(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:666:666::/:/bin/sh\n")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink("../../../outside", root / "etc")  # clamped at root: resolves to root/outside
    with pytest.raises(BuildError):
        lookup_user(root, "evil")
    (root / "outside").mkdir()
    (root / "outside" / "passwd").write_text("inside:x:5:6::/:/bin/sh\n")
    assert lookup_user(root, "inside") == (5, 6, ())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("10", (10, 10)),
        ("app", (1000, 1000)),
        ("svc", (1001, 1001)),  # reference: user without group -> gid = the uid
        ("svc:staff", (1001, 50)),
        ("svc:7", (1001, 7)),
        ("10:20", (10, 20)),
        ("5555:wheel", (5555, 10)),
    ],
)
def test_lookup_chown(rootfs: Path, spec: str, expected: tuple[int, int]) -> None:
    assert lookup_chown(rootfs, spec) == expected


@pytest.mark.parametrize("spec", ["a:b:c", ":10", "ghost", "app:ghosts"])
def test_lookup_chown_errors(rootfs: Path, spec: str) -> None:
    with pytest.raises(BuildError):
        lookup_chown(rootfs, spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app", (1000, 1000)),
        ("svc", (1001, 50)),  # a name: its passwd uid and gid
        ("1001", (1001, 1001)),  # a number: used for both, as BuildKit's readUser
        ("4242", (4242, 4242)),
        ("nosuch", (0, 0)),  # no entry: root, not an error (file operations only)
        ("nosuch:staff", (0, 50)),
        ("svc:nosuch", (1001, 50)),  # unknown group: the gid found so far
        ("app:777", (1000, 777)),
    ],
)
def test_lookup_file_owner(rootfs: Path, spec: str, expected: tuple[int, int]) -> None:
    assert lookup_file_owner(rootfs, spec) == expected


def test_lookup_file_owner_without_account_files(tmp_path: Path) -> None:
    assert lookup_file_owner(tmp_path, "app:staff") == (0, 0)
    with pytest.raises(BuildError, match="unable to find user app"):
        lookup_user(tmp_path, "app")  # RUN still refuses it


@pytest.mark.parametrize(
    ("spec", "home"),
    [
        ("root", "/root"),
        ("", "/root"),
        ("app", "/home/app"),
        ("1000:staff", "/home/app"),  # the group never changes the home
        ("svc", "/srv"),
        ("4242", "/"),  # no passwd entry: runc's default
    ],
)
def test_lookup_home(rootfs: Path, spec: str, home: str) -> None:
    assert lookup_home(rootfs, spec) == home


def test_lookup_home_without_passwd(tmp_path: Path) -> None:
    assert lookup_home(tmp_path, "0") == "/"
