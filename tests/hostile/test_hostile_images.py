"""Hostile base images built in every isolation: zero escapes ("keep attacking in CI").

Why whole builds: the unit tests (tests/fs/test_unpack_hostile.py) prove the unpacker's rules;
this suite proves the *builds* use them, through the real pull path, in every isolation:
`namespaces` and `chroot` as root, `rootless` as a fresh non-root user, and `inplace` in kiln's
executor image under podman with Kubernetes' default capabilities (the build root is the
container's own `/`, next to kiln itself and its mounts). Each attack is an image of its own
(a refused entry ends the build, so one attack per build), pushed once; each build ends as its
attack says (built, or refused with a clear message, never a traceback), and sentinels are
checked afterwards: a world-writable directory on the host for the first three, and kiln's own
files, the workspace, an output mount and a read-only token mount for `inplace`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.hostile.images import (
    Attack,
    Layout,
    busybox_layer,
    host_attacks,
    inplace_attacks,
    layer_tar,
)
from tests.pod.test_pod_scenario import KUBERNETES_DEFAULT_CAPS
from tests.support.base_image import push_layout
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.rootless import rootless_user, shared_kiln

pytestmark = pytest.mark.root

SENTINEL = b"the host's file: no build may touch it\n"


@pytest.fixture(scope="module")
def sentinel_dir() -> Iterator[Path]:
    """A world-writable directory on the host holding one world-writable file.

    World-writable so that an escape would succeed even for the rootless user: only kiln's
    path handling stands between a hostile image and it.
    """
    path = Path(tempfile.mkdtemp(prefix="kiln-hostile-"))
    path.chmod(0o777)
    (path / "sentinel").write_bytes(SENTINEL)
    (path / "sentinel").chmod(0o666)
    yield path
    shutil.rmtree(path)


def assert_untouched(sentinel_dir: Path) -> None:
    assert sorted(p.name for p in sentinel_dir.iterdir()) == ["sentinel"]
    st = os.lstat(sentinel_dir / "sentinel")
    assert (sentinel_dir / "sentinel").read_bytes() == SENTINEL
    assert (st.st_nlink, st.st_mode & 0o7777, st.st_uid) == (1, 0o666, 0)


@pytest.fixture(scope="module")
def attacks(sentinel_dir: Path) -> list[Attack]:
    return [*host_attacks(str(sentinel_dir)), *inplace_attacks()]


@pytest.fixture(scope="module")
def images(
    registry: RegistryServer, attacks: list[Attack], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """Every attack as an image in the test registry: tag -> reference."""
    work = tmp_path_factory.mktemp("hostile-layout")
    base = busybox_layer(work)
    layout = Layout(work / "oci")
    for attack in attacks:
        layout.add(attack.tag, [base, *(layer_tar(layer) for layer in attack.layers)])
    refs = {a.tag: f"{registry.host}/hostile/image:{a.tag}" for a in attacks}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda tag: push_layout(layout.root, tag, refs[tag]), refs))
    return refs


def _context(parent: Path, attack: Attack, ref: str) -> Path:
    """A build context FROM the attack's image: its RUN (or COPY) step after the FROM."""
    context = parent / attack.tag
    context.mkdir(parents=True)
    (context / "msg.txt").write_text("copied\n")
    step = attack.run
    line = step.removeprefix("COPY:") if step.startswith("COPY:") else None
    instruction = f"COPY {line}" if line else f"RUN {step}"
    (context / "Dockerfile").write_text(f"FROM {ref}\n{instruction}\n")
    return context


def _report(where: str, chosen: list[Attack]) -> None:
    """The suite's counts (shown with `pytest -s`): builds, hostile entries, escapes."""
    entries = sum(a.attack_count for a in chosen)
    print(f"hostile images, {where}: {len(chosen)} builds, {entries} hostile entries, 0 escapes")


def _judge(attack: Attack, returncode: int, log: str, where: str) -> None:
    """The build ended as the attack says, and never with a traceback."""
    assert "Traceback" not in log, f"{where} {attack.tag}: {log[-3000:]}"
    if attack.fails is None:
        assert returncode == 0, f"{where} {attack.tag}: {log[-3000:]}"
    else:
        assert returncode != 0, f"{where} {attack.tag} was built: {log[-3000:]}"
        assert attack.fails in log, f"{where} {attack.tag}: {log[-3000:]}"


@pytest.mark.parametrize("isolation", ["namespaces", "chroot"])
def test_host_attacks_as_root(
    isolation: str,
    attacks: list[Attack],
    images: dict[str, str],
    registry: RegistryServer,
    sentinel_dir: Path,
    tmp_path: Path,
) -> None:
    chosen = [a for a in attacks if not a.inplace_only]
    for attack in chosen:
        context = _context(tmp_path / "ctx", attack, images[attack.tag])
        result = subprocess.run(
            [sys.executable, "-m", "kiln.cli.main", "build", "--no-push",
             f"--isolation={isolation}", "--insecure-registry", registry.host,
             "--work-dir", str(tmp_path / "work"), str(context)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        _judge(attack, result.returncode, result.stderr, isolation)
        if attack.fails is None:  # (a refused base never gets as far as choosing one)
            assert f"Isolation: {isolation}" in result.stderr
        assert_untouched(sentinel_dir)
    _report(isolation, chosen)


@pytest.fixture(scope="module")
def shared_dir() -> Iterator[Path]:
    """A directory every user can read, with a copy of kiln the rootless user can import."""
    with shared_kiln("kiln-hostile-rootless-") as path:
        yield path


def test_host_attacks_rootless(
    attacks: list[Attack],
    images: dict[str, str],
    registry: RegistryServer,
    sentinel_dir: Path,
    shared_dir: Path,
) -> None:
    chosen = [a for a in attacks if not a.inplace_only]
    with rootless_user(subordinate_ids=True) as user:
        for attack in chosen:
            context = _context(shared_dir / "ctx", attack, images[attack.tag])
            subprocess.run(["chmod", "-R", "a+rX", str(shared_dir / "ctx")], check=True)
            result = user.run_kiln(
                shared_dir, shared_dir / f"work-{attack.tag}",
                "build", "--no-push", "--insecure-registry", registry.host, str(context),
            )  # fmt: skip
            _judge(attack, result.returncode, result.stderr, "rootless")
            if attack.fails is None:
                assert "Isolation: namespaces (rootless" in result.stderr
            assert_untouched(sentinel_dir)
    _report("rootless", chosen)


#: kiln's own files in the executor image (bytecode caches may appear: not counted)
_KILN_SUM = (
    "{ find /kiln -path /kiln/work -prune -o ! -path '*/__pycache__*' -print | sort; "
    "find /kiln/bin /kiln/lib -type f ! -path '*/__pycache__/*' | sort | xargs md5sum; } | md5sum"
)


def test_all_attacks_inplace_in_a_default_pod(
    attacks: list[Attack],
    images: dict[str, str],
    registry: RegistryServer,
    debug_executor_image: str,
    podman: Podman,
    sentinel_dir: Path,
    tmp_path: Path,
) -> None:
    """One container, one build per attack (`--cleanup` puts `/` back after each)."""
    workspace, out, token = tmp_path / "workspace", tmp_path / "out", tmp_path / "token"
    for directory, name in ((workspace, "keep"), (out, "sentinel"), (token, "token")):
        directory.mkdir()
        (directory / name).write_bytes(SENTINEL)
    for attack in attacks:
        _context(workspace, attack, images[attack.tag])
    (workspace / "logs").mkdir()
    before = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    kiln = (
        "/kiln/bin/python3 -s -m kiln.cli.main executor --isolation=inplace --cleanup --no-push "
        f"--insecure-registry={registry.host}"
    )
    builds = "\n".join(
        f"{kiln} --context=dir:///workspace/{a.tag} 2> /workspace/logs/{a.tag}; "
        f'echo "{a.tag}=$?"; [ -x /busybox/sh ] || echo "{a.tag}: /busybox gone"'
        for a in attacks
    )
    script = (
        f'before=$({_KILN_SUM})\n{builds}\n[ "$({_KILN_SUM})" = "$before" ] && echo intact; true\n'
    )
    caps = ["--cap-drop=ALL", *(f"--cap-add={cap}" for cap in KUBERNETES_DEFAULT_CAPS)]
    mounts = [
        f"{workspace}:/workspace", f"{out}:/out",
        f"{token}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
    ]  # fmt: skip
    result = podman.run(
        debug_executor_image,
        "-c",
        script,
        options=["--entrypoint", "/busybox/sh", *caps, *(f"-v={m}" for m in mounts)],
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout.split()  # kiln prints digests too: only look at what the script says
    assert "gone" not in said, said  # the container's own /busybox survived every build
    assert said[-1] == "intact", said  # kiln's own files: same names, same bytes
    tags = {a.tag for a in attacks}
    codes = dict(w.split("=", 1) for w in said if w.partition("=")[0] in tags)
    assert list(codes) == [a.tag for a in attacks], said
    for attack in attacks:
        log = (workspace / "logs" / attack.tag).read_text()
        _judge(attack, int(codes[attack.tag]), log, "inplace")
        if attack.fails is None:
            assert "Isolation: inplace" in log
    # The mounts: nothing added, removed or changed.
    after = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")}
    assert after == before | {f"workspace/logs/{a.tag}" for a in attacks}
    for path in (workspace / "keep", out / "sentinel", token / "token"):
        assert path.read_bytes() == SENTINEL
    assert_untouched(sentinel_dir)
    _report("inplace", attacks)
