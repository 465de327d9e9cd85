"""The inplace rules on a scratch tree standing in for `/`: kept, reset, filtered, restored."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from kiln.builder import inplace_root
from kiln.builder.inplace_root import (
    IgnoredPaths,
    check_container,
    ignored_paths,
    reset,
    restore,
    save,
    unpack,
)
from kiln.cli.hints import render_for_cli
from kiln.errors import SandboxError, UnsafePathError


def _tree(root: Path) -> Path:
    for rel, content in {
        "kiln/bin/python": "interpreter",
        "workspace/Dockerfile": "FROM x",
        "etc/hosts": "mounted hosts",
        "etc/passwd": "old passwd",
        "var/run/secret": "socket",
        "var/lib/old": "old",
        "usr/bin/tool": "tool",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    (root / "lib").symlink_to("usr/lib")
    return root


def _mountinfo(root: Path) -> str:
    lines = [
        "22 1 0:21 / / rw - overlay overlay rw",
        "23 22 0:22 / /proc rw - proc proc rw",
        f"24 22 8:1 /ws {root}/workspace rw - ext4 /dev/sda1 rw",
        f"25 22 8:1 /h {root}/etc/hosts rw - ext4 /dev/sda1 rw",
        f"26 22 8:1 /s {root}/my\\040secret rw - ext4 /dev/sda1 rw",
    ]
    return "\n".join(lines) + "\n"


def _ignored(root: Path) -> IgnoredPaths:
    return ignored_paths(root, "kiln", ["extra/keep"], mountinfo=_mountinfo(root))


def _files(root: Path) -> dict[str, str]:
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        found[rel] = path.read_text() if path.is_file() and not path.is_symlink() else "<dir>"
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
    return found


def test_ignored_paths_come_from_flags_and_the_mount_table(tmp_path: Path) -> None:
    assert _ignored(tmp_path).paths == {
        "kiln", "extra/keep", "var/run", "workspace", "etc/hosts", "my secret",
    }  # fmt: skip
    kept = ignored_paths(tmp_path, "/kiln/", ignore_var_run=False, mountinfo="")
    assert kept.paths == {"kiln"}


def test_reset_deletes_everything_but_ignored_paths(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    reset(root, _ignored(root))
    assert _files(root) == {
        "etc": "<dir>",
        "etc/hosts": "mounted hosts",
        "kiln": "<dir>",
        "kiln/bin": "<dir>",
        "kiln/bin/python": "interpreter",
        "var": "<dir>",
        "var/run": "<dir>",
        "var/run/secret": "socket",
        "workspace": "<dir>",
        "workspace/Dockerfile": "FROM x",
    }


def _layer(path: Path, entries: dict[str, str | None]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                data = content.encode()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def test_unpack_never_writes_or_whites_out_ignored_paths(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    ignored = _ignored(root)
    reset(root, ignored)
    layer = _layer(
        tmp_path / "layer.tar",
        {
            "etc": None,
            "etc/hosts": "image hosts",
            "etc/passwd": "image passwd",
            "kiln/bin/python": "replaced!",
            ".wh.workspace": "",
            "var/.wh..wh..opq": "",
            "bin/sh": "shell",
        },
    )
    unpack(layer, root, ignored)
    files = _files(root)
    assert files["etc/hosts"] == "mounted hosts"
    assert files["etc/passwd"] == "image passwd"
    assert files["kiln/bin/python"] == "interpreter"
    assert files["workspace/Dockerfile"] == "FROM x"
    assert files["var/run/secret"] == "socket"
    assert files["bin/sh"] == "shell"


def test_cleanup_restores_the_tree(tmp_path: Path) -> None:
    root = _tree(tmp_path / "root")
    ignored = _ignored(root)
    before = _files(root)
    saved = tmp_path / "saved.tar.gz"
    save(root, ignored, saved)
    reset(root, ignored)
    (root / "built").write_text("by the build")
    (root / "kiln" / "cache").write_text("kiln's own, kept")
    restore(root, ignored, saved)
    assert _files(root) == {**before, "kiln/cache": "kiln's own, kept"}


def test_outside_a_container_inplace_needs_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("container", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    cgroup = tmp_path / "cgroup"
    cgroup.write_text("9:name=systemd:/init.scope\n")
    monkeypatch.setattr(inplace_root, "INIT_CGROUP", cgroup)
    root = tmp_path / "root"
    root.mkdir()
    with pytest.raises(SandboxError, match="outside a container") as info:
        check_container(False, root)
    assert "pass force=True if this machine is one" in str(info.value)
    assert "pass --force if this machine is one, or use --isolation namespaces" in (
        render_for_cli(info.value)
    )
    assert check_container(True, root) == "--force given"
    (root / ".dockerenv").touch()
    assert check_container(False, root) == "/.dockerenv exists"
    (root / ".dockerenv").unlink()
    cgroup.write_text("1:cpu:/kubepods/burstable/pod1234/abc\n")
    assert check_container(False, root) == "/proc/1/cgroup mentions kubepods"


def test_unpack_refuses_entries_reaching_protected_paths_through_symlinks(tmp_path: Path) -> None:
    """Issue 11.1: the check is on where an entry resolves, not on its name."""
    root = _tree(tmp_path / "root")
    (root / "var" / "run").rename(root / "run")
    (root / "var" / "run").symlink_to("/run")  # as in most images: /var/run -> /run
    ignored = _ignored(root)
    assert {"run", "var/run"} <= ignored.paths  # a kept symlink counts where it points, too
    reset(root, ignored)
    before = _files(root)
    attacks = {
        "kiln-file": {"v": "-> /kiln/bin", "v/python": "replaced"},
        "kiln-dir": {"x": "-> /kiln", "x/file": "new"},
        "mount": {"w": "-> /workspace", "w/Dockerfile": "replaced"},
        "opaque": {"w": "-> /kiln", "w/.wh..wh..opq": ""},
        "whiteout": {"w": "-> /etc", "w/.wh.hosts": ""},
        "secret": {"s": "-> /var/run", "s/secret": "replaced"},
    }
    for name, entries in attacks.items():
        layer = _layer_with_links(tmp_path / f"{name}.tar", entries)
        with pytest.raises(UnsafePathError, match="which is protected"):
            unpack(layer, root, ignored)
        assert {k: v for k, v in _files(root).items() if ignored.covers(k)} == {
            k: v for k, v in before.items() if ignored.covers(k)
        }, name


def _layer_with_links(path: Path, entries: dict[str, str]) -> Path:
    """A layer tar whose values starting with '-> ' are symlinks, the others files."""
    with tarfile.open(path, "w") as tar:
        for name, content in entries.items():
            info = tarfile.TarInfo(name)
            if content.startswith("-> "):
                info.type, info.linkname = tarfile.SYMTYPE, content[3:]
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content.encode()))
    return path
