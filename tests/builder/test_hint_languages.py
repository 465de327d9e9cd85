"""Each library hint that names an option speaks the caller's language (issue 10.22).

Why a table of real failures: a hint is only right if the error that carries it really happens
and both doors show it in their own words. Each case below makes the kernel, the registry or
the filesystem refuse something, then checks the Python API's text (``str(exc)``: keyword
arguments) and the command line's (the real ``kiln`` command where the failure can be reached
through it, else ``render_for_cli``, which is what the CLI's ``main`` prints): flags, and never
the other language.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import kiln
from kiln.cli.hints import render_for_cli
from kiln.errors import KilnError
from kiln.fs import OverlayRootfs
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = [pytest.mark.root, pytest.mark.registry]

NO_SYS_ADMIN = ("setpriv", "--bounding-set", "-sys_admin")


@dataclass(frozen=True)
class Texts:
    """What the Python API and the command line showed for the same failure."""

    api: str
    cli: str


@dataclass(frozen=True)
class Env:
    tmp: Path
    registry: RegistryServer
    overlay: Path  # a directory on an overlay mount: overlay refuses it as an upper dir


def _context(root: Path, dockerfile: str = "FROM scratch\nCOPY a /a\n") -> Path:
    root.mkdir(parents=True)
    (root / "Dockerfile").write_text(dockerfile)
    (root / "a").write_text("a")
    return root


def _api_error(**options: object) -> str:
    with pytest.raises(KilnError) as info:
        kiln.build_image(**options)  # type: ignore[arg-type]
    return str(info.value)


def _python_without_sys_admin(script: str) -> list[str]:
    """Run ``script`` with CAP_SYS_ADMIN dropped from the bounding set; its printed lines."""
    out = subprocess.run(
        [*NO_SYS_ADMIN, sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.split("\0")


def sandbox_privilege(env: Env) -> Texts:
    """The sandbox helper's own set-up refused (unshare), reported over its pipe."""
    rootfs = env.tmp / "rootfs"
    rootfs.mkdir()
    api, cli = _python_without_sys_admin(
        f"""
        from kiln.cli.hints import render_for_cli
        from kiln.errors import SandboxError
        from kiln.sandbox import NamespacesRunner, RunSpec
        try:
            NamespacesRunner().run(RunSpec({str(rootfs)!r}, ("true",), (), "/", 0, 0, ()))
        except SandboxError as exc:
            print(str(exc), render_for_cli(exc), sep="\\0", end="")
        """
    )
    assert "create mount, pid, uts, ipc namespaces: Operation not permitted" in api
    return Texts(api, cli)


def isolation_unavailable(env: Env) -> Texts:
    """An explicit ``namespaces`` isolation where it cannot work fails before anything else."""
    context = _context(env.tmp / "ctx")
    (api,) = _python_without_sys_admin(
        f"""
        import kiln
        from kiln.errors import SandboxError
        try:
            kiln.build_image({str(context)!r}, no_push=True, isolation="namespaces")
        except SandboxError as exc:
            print(str(exc), end="")
        """
    )
    cli = run_kiln(
        "build", "--no-push", "--isolation", "namespaces", str(context), prefix=NO_SYS_ADMIN
    )
    assert cli.returncode == 1, cli.stderr
    assert "the namespaces isolation cannot run here" in api
    return Texts(api, cli.stderr)


def snapshotter_unavailable(env: Env) -> Texts:
    """``snapshotter="overlay"`` with a work dir overlay cannot stack on."""
    context = _context(env.tmp / "ctx")
    api = _api_error(context=context, no_push=True, snapshotter="overlay", work_dir=env.overlay)
    cli = run_kiln(
        "build",
        "--no-push",
        "--snapshotter",
        "overlay",
        "--work-dir",
        str(env.overlay),
        str(context),
    )
    assert cli.returncode == 1, cli.stderr
    assert "the overlay snapshotter cannot run here" in api
    return Texts(api, cli.stderr)


def overlay_mount_refused(env: Env) -> Texts:
    """The overlay mount itself refused by the kernel (fs.overlay, below the snapshotter)."""
    lower = env.tmp / "lower"
    lower.mkdir()
    with pytest.raises(KilnError) as info:
        OverlayRootfs(env.overlay / "stage", [lower]).close()
    assert "cannot mount the overlay" in str(info.value)
    return Texts(str(info.value), render_for_cli(info.value))


def work_dir_unusable(env: Env) -> Texts:
    """A work dir below a regular file cannot be created."""
    context = _context(env.tmp / "ctx")
    (env.tmp / "file").write_text("not a directory")
    work = env.tmp / "file" / "work"
    api = _api_error(context=context, no_push=True, work_dir=work)
    cli = run_kiln("build", "--no-push", "--work-dir", str(work), str(context))
    assert cli.returncode == 1, cli.stderr
    assert "cannot create kiln's work dir" in api
    return Texts(api, cli.stderr)


def platform_mismatch(env: Env) -> Texts:
    """A single-platform arm64 base (pushed to a real registry) asked for as linux/amd64."""
    host = env.registry.host
    base = f"{host}/hints/arm64-only:1"
    kiln.build_image(
        _context(env.tmp / "base"),
        destinations=[base],
        platform="linux/arm64",
        insecure_registries=[host],
    )
    context = _context(env.tmp / "ctx", f"FROM {base}\nCOPY a /b\n")
    api = _api_error(context=context, no_push=True, insecure_registries=[host])
    cli = run_kiln("build", "--no-push", "--insecure-registry", host, str(context))
    assert cli.returncode == 1, cli.stderr
    assert "single-platform image for linux/arm64" in api
    return Texts(api, cli.stderr)


#: (how to fail, the keyword argument the API names, the flag the CLI names)
CASES: list[tuple[Callable[[Env], Texts], str, str]] = [
    (sandbox_privilege, "isolation='auto' picks what", "--isolation auto picks what"),
    (isolation_unavailable, "isolation='auto' picks the best", "--isolation auto picks the best"),
    (
        snapshotter_unavailable,
        "use snapshotter='walk' (or snapshotter='auto')",
        "use --snapshotter walk (or --snapshotter auto)",
    ),
    (overlay_mount_refused, "use snapshotter='walk' where", "use --snapshotter walk where"),
    (work_dir_unusable, "point work_dir=... at a directory", "point --work-dir at a directory"),
    (platform_mismatch, "build with platform='linux/arm64'", "build with --platform linux/arm64"),
]


@pytest.fixture
def overlay_dir(tmp_path: Path) -> Iterator[Path]:
    """A writable directory on an overlay mount (overlay refuses overlay as its upper dir)."""
    base = tmp_path / "ovl"
    for name in ("lower", "upper", "work", "merged"):
        (base / name).mkdir(parents=True)
    options = f"lowerdir={base}/lower,upperdir={base}/upper,workdir={base}/work"
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(base / "merged")], check=True
    )
    try:
        yield base / "merged"
    finally:
        subprocess.run(["umount", str(base / "merged")], check=True)


@pytest.mark.parametrize(("fail", "keyword", "flag"), CASES, ids=[c[0].__name__ for c in CASES])
def test_the_api_names_keyword_arguments_and_the_cli_names_flags(
    fail: Callable[[Env], Texts],
    keyword: str,
    flag: str,
    registry: RegistryServer,
    overlay_dir: Path,
    tmp_path: Path,
) -> None:
    work = tmp_path / "case"
    work.mkdir()
    texts = fail(Env(work, registry, overlay_dir))
    api_hint = texts.api.split("\nhint: ", 1)[1]
    assert keyword in api_hint, texts.api
    assert "--" not in api_hint, texts.api
    assert "hint: " in texts.cli, texts.cli
    assert flag in texts.cli.split("hint: ", 1)[1], texts.cli
    assert keyword not in texts.cli, texts.cli
    assert "Traceback" not in texts.cli
    # kiln removes its work dirs also when it fails (the overlay case's own dir is the test's).
    assert not [name for name in os.listdir(overlay_dir) if name.startswith("kiln-")]
