"""How a build uses the inplace rules, on a scratch tree standing in for `/` (no container).

The pod tests (tests/pod/test_inplace.py) run the real thing over a container's `/`; these
check the pieces a pod test cannot isolate: what is protected besides the mount table, where
COPY --from reads, that a COPY into a protected path is refused, that `--cleanup` restores
after a failure, when `auto` falls back to inplace, and the CLI spelling of the flags.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
import tempfile
from pathlib import Path

import pytest

from kiln.builder import isolation
from kiln.builder.builder import build
from kiln.builder.effects import WorkdirEffect
from kiln.builder.executor import StageExecutor
from kiln.builder.inplace_filesystems import InplaceFilesystems
from kiln.builder.options import BuildOptions
from kiln.builder.workspace import Workspace
from kiln.cli.build_command import options_from_args
from kiln.cli.main import make_parser
from kiln.context import LocalContext
from kiln.errors import BuildError, SandboxError, UnsafePathError
from kiln.fs import StoredLayer
from kiln.sandbox import ChrootRunner, InplaceRunner, NamespacesRunner, userns


def _layer(workspace: Workspace, files: dict[str, str]) -> StoredLayer:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content.encode()))
    blob = gzip.compress(raw.getvalue())
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    path = workspace.scratch / "blob"
    path.write_bytes(blob)
    workspace.store.add_file(path, digest)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    media_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    return StoredLayer(digest, diff_id, len(blob), media_type, workspace.store)


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    for rel, text in {
        "kiln/bin/python3": "kiln itself",
        "ctx/Dockerfile": "FROM x",
        "mnt/secret": "mounted",
        "busybox/sh": "debug shell",
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _files(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith("kiln/work")
    }


def _filesystems(root: Path, workspace: Workspace, *, cleanup: bool = False) -> InplaceFilesystems:
    given = BuildOptions(
        context=f"dir://{root}/ctx",
        kiln_dir=root / "kiln",
        force=True,
        tar_path=root / "out" / "app.tar",
        ignore_paths=("/opt/keep",),
        cleanup=cleanup,
    )
    mountinfo = f"1 0 0:1 / / rw - overlay o rw\n2 1 8:1 /s {root}/mnt rw - ext4 /dev/x rw\n"
    return InplaceFilesystems(given, workspace, root=root, mountinfo=mountinfo)


def test_stages_replace_the_root_but_never_kilns_paths(tmp_path: Path) -> None:
    root = _root(tmp_path)
    with Workspace(root / "kiln" / "work", None) as workspace:
        filesystems = _filesystems(root, workspace)
        assert filesystems.ignored.paths == {
            "kiln", "kiln/work/" + workspace.root.name, "ctx", "mnt", "opt/keep", "var/run",
            "out/app.tar",
        }  # fmt: skip
        assert tempfile.gettempdir() == str(workspace.root / "tmp")  # fetched contexts go here
        base = _layer(workspace, {"bin/sh": "base shell", "kiln/bin/python3": "overwritten?"})
        stage = filesystems.create([base], "0")
        assert stage.rootfs == root
        assert _files(root) == {
            "bin/sh": "base shell",
            "ctx/Dockerfile": "FROM x",
            "kiln/bin/python3": "kiln itself",
            "mnt/secret": "mounted",
        }
        stage.begin(("proc",))
        (root / "made.txt").write_text("by RUN")
        (root / "kiln" / "cache").write_text("kiln's own")
        (root / "ctx" / "new").write_text("not in a layer")
        _, changes = stage.diff(None)
        assert changes.changed == ("made.txt",)
        with pytest.raises(BuildError, match="COPY/ADD wrote into /kiln/x"):
            stage.diff(["app", "kiln/x"])
        # COPY --from=stage reads that stage's layers from a directory of its own.
        source = filesystems.stage_source(lambda: root, [base], "0")
        assert source.parent == workspace.root
        assert (source / "bin" / "sh").read_text() == "base shell"
        assert filesystems.detached([base], "again") == source  # unpacked once
        filesystems.close()
        assert tempfile.gettempdir() != str(workspace.root / "tmp")


def test_cleanup_puts_the_root_back_also_after_a_failed_build(tmp_path: Path) -> None:
    root = _root(tmp_path)
    before = _files(root)
    with Workspace(root / "kiln" / "work", None) as workspace:
        filesystems = _filesystems(root, workspace, cleanup=True)
        try:
            filesystems.create([_layer(workspace, {"bin/sh": "base"})], "0")
            (root / "half-done").write_text("the RUN that failed")
            raise RuntimeError("a step failed")
        except RuntimeError:
            pass
        finally:
            filesystems.close()
        assert _files(root) == before


def test_inplace_outside_a_container_is_refused_without_force(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation, "container_hint", lambda: None)
    monkeypatch.setattr("kiln.builder.inplace_root.container_hint", lambda root: None)
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    options = BuildOptions(
        context=str(tmp_path), isolation="inplace", no_push=True, kiln_dir=tmp_path / "kiln"
    )
    with pytest.raises(SandboxError, match="refusing the inplace isolation outside a container"):
        build(options)
    assert list((tmp_path / "kiln").iterdir()) == []  # the work dir went too
    assert (tmp_path / "Dockerfile").exists()


@pytest.mark.parametrize(
    ("namespaces", "chroot", "container", "expected"),
    [
        ("no userns", "no chroot", "/.dockerenv exists", "inside a container (/.dockerenv exists)"),
        ("no userns", None, "/.dockerenv exists", None),  # chroot works: never inplace
        ("no userns", "no chroot", None, None),  # on a host: never inplace
    ],
)
def test_auto_falls_back_to_inplace_only_in_a_container_where_nothing_else_works(
    monkeypatch: pytest.MonkeyPatch,
    namespaces: str | None,
    chroot: str | None,
    container: str | None,
    expected: str | None,
) -> None:
    monkeypatch.setitem(isolation._BACKENDS, "namespaces", (lambda: namespaces, NamespacesRunner))
    monkeypatch.setitem(isolation._BACKENDS, "chroot", (lambda: chroot, ChrootRunner))
    monkeypatch.setattr(isolation, "container_hint", lambda: container)
    reason = isolation.inplace_reason("auto")
    if expected is None:
        assert reason is None
    else:
        assert reason is not None and reason.startswith(expected)
        assert "no userns" in reason and "no chroot" in reason
        assert isinstance(isolation.select_runner("auto", reason), InplaceRunner)
        # Root in the user namespace a non-root kiln re-executed itself in does not own `/`.
        with monkeypatch.context() as inner:
            inner.setenv(userns.MARKER, "1")
            assert isolation.inplace_reason("auto") is None
    assert isolation.inplace_reason("inplace") == "chosen with --isolation"
    if chroot is None:
        assert isolation.inplace_reason("chroot") is None
    else:  # an explicit choice that cannot work fails before the build, saying why
        with pytest.raises(SandboxError, match="the chroot isolation cannot run here: no chroot"):
            isolation.inplace_reason("chroot")


def test_auto_says_why_it_did_not_build_in_place_either(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(isolation._BACKENDS, "namespaces", (lambda: "no userns", NamespacesRunner))
    monkeypatch.setitem(isolation._BACKENDS, "chroot", (lambda: "no chroot", ChrootRunner))
    monkeypatch.setattr(isolation, "container_hint", lambda: "/.dockerenv exists")
    missing = "inplace isolation needs the container's /dev/shm (missing here)"
    monkeypatch.setattr(isolation, "inplace_available", lambda: missing)
    assert isolation.inplace_reason("auto") is None  # a RUN there would lack /dev/shm
    with pytest.raises(SandboxError) as caught:
        isolation.select_runner("auto", None)
    assert caught.value.message == (
        f"no isolation backend can run RUN steps here: no userns; no chroot; {missing}"
    )


def test_inplace_needs_the_containers_proc_dev_and_sys(tmp_path: Path) -> None:
    assert isolation.inplace_available() is None  # this machine's / has them all
    root = tmp_path / "root"
    (root / "proc" / "self").mkdir(parents=True)
    (root / "dev" / "shm").mkdir(parents=True)
    (root / "dev" / "null").write_text("")  # a regular file is not the device
    os.symlink("/dev/zero", root / "dev" / "zero")  # the host's real node, through a link
    problem = isolation.inplace_available(root)
    assert problem == (
        "inplace isolation needs the container's /sys/kernel, /dev/null, /dev/full, "
        "/dev/random, /dev/urandom, /dev/tty, /dev/pts (missing here)"
    )


def test_the_cli_spells_the_inplace_flags_like_kaniko() -> None:
    args = make_parser().parse_args(
        [
            "executor", "--isolation=inplace", "--kiln-dir=/k", "--ignore-path=/a",
            "--ignore-path", "/b", "--ignore-var-run=false", "--force", "--cleanup", "--no-push",
        ]
    )  # fmt: skip
    options = options_from_args(args)
    assert (options.isolation, options.kiln_dir, options.ignore_paths) == (
        "inplace", Path("/k"), ("/a", "/b"),
    )  # fmt: skip
    assert (options.ignore_var_run, options.force, options.cleanup) == (False, True, True)
    defaults = options_from_args(make_parser().parse_args(["build", ".", "--ignore-var-run"]))
    assert (defaults.kiln_dir, defaults.ignore_var_run, defaults.cleanup) == (
        Path("/kiln"), True, False,
    )  # fmt: skip
    with pytest.raises(SystemExit):
        make_parser().parse_args(["build", "--ignore-var-run=maybe"])


def test_workdir_through_a_planted_link_is_refused_before_mkdir(tmp_path: Path) -> None:
    root = _root(tmp_path)
    with Workspace(root / "kiln" / "work", None) as workspace:
        filesystems = _filesystems(root, workspace)
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            link = tarfile.TarInfo("w")
            link.type, link.linkname = tarfile.SYMTYPE, "/kiln"
            tar.addfile(link)
        blob = gzip.compress(raw.getvalue())
        (workspace.scratch / "blob").write_bytes(blob)
        digest = "sha256:" + hashlib.sha256(blob).hexdigest()
        workspace.store.add_file(workspace.scratch / "blob", digest)
        diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
        media_type = "application/vnd.oci.image.layer.v1.tar+gzip"
        base = StoredLayer(digest, diff_id, len(blob), media_type, workspace.store)
        stage = filesystems.create([base], "0")
        executor = StageExecutor(
            stage, workspace.store, InplaceRunner(), lambda _: (_no_source(), False),
            "Dockerfile", workspace.scratch,
        )  # fmt: skip
        with pytest.raises(UnsafePathError, match="directory /w/new resolves to /kiln, which is"):
            executor.workdir(WorkdirEffect("/w/new", ""))
        assert not (root / "kiln" / "new").exists()
        filesystems.close()


def _no_source() -> LocalContext:
    raise AssertionError("WORKDIR reads no source")
