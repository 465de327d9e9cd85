"""The `inplace` isolation where it is meant to run: kiln's executor image under podman.

Kaniko's model in a default pod (root, default capabilities, no privileges): the container's
own / becomes each stage's root. What must hold, judged from outside the container: the image
has the right files (RUN, COPY, COPY --from a stage, ENV, a deletion), nothing of kiln's own
directory, the workspace or the mounted secret is in any layer, the mounted workspace and secret
are intact, and with `--cleanup` the container is put back so further builds (also after a
failed one) run in the same container.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from tests.conftest import REGISTRY_PASSWORD
from tests.pod.test_pod_scenario import _run_executor, _run_pushed, _secret
from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.tools import umoci_unpack

DOCKERFILE = """\
FROM {base} AS tools
RUN echo from-tools > /tool.txt
FROM {base}
ENV GREETING=hi
COPY msg.txt /app/msg.txt
COPY --from=tools /tool.txt /app/tool.txt
RUN echo "$GREETING $(cat /app/msg.txt) $(cat /app/tool.txt)" > /app/out.txt && rm -r /home/app
CMD ["cat", "/app/out.txt"]
"""


def _layer_names(layout: Path) -> list[list[str]]:
    """Entry names of every layer of the single image in an OCI layout (read with tarfile)."""

    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    names = []
    for layer in manifest["layers"]:
        with tarfile.open(blob(layer["digest"])) as tar:
            names.append([name.removeprefix("./").rstrip("/") for name in tar.getnames()])
    return names


def test_inplace_never_deletes_the_mounted_workspace(
    executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    auth_registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    (workspace / "keep" / "deep").mkdir(parents=True)
    (workspace / "keep" / "deep" / "file").write_text("still here")
    (workspace / "Dockerfile").write_text(DOCKERFILE.format(base=pod_base_image))
    (workspace / "msg.txt").write_text("hello")
    secret = _secret(tmp_path, auth_registry)
    secret_text = secret.read_text()
    ref = f"{auth_registry.host}/pod/inplace:1"
    log = _run_executor(
        podman,
        executor_image,
        [f"{workspace}:/workspace", f"{secret}:/kiln/.docker/config.json:ro"],
        "--isolation=inplace",
        "--context=dir:///workspace",
        f"--destination={ref}",
        f"--insecure-registry={registry.host}",
        f"--insecure-registry={auth_registry.host}",
        "--digest-file=/workspace/digest",
    )
    assert "Isolation: inplace (chosen with --isolation)" in log
    assert REGISTRY_PASSWORD not in log
    assert (workspace / "keep" / "deep" / "file").read_text() == "still here"
    assert (workspace / "msg.txt").read_text() == "hello"
    assert (workspace / "digest").read_text().startswith("sha256:")
    assert secret.read_text() == secret_text

    rootfs = umoci_unpack(ref, tmp_path / "check", authfile=secret)
    assert (rootfs / "app" / "out.txt").read_text() == "hi hello from-tools\n"
    assert (rootfs / "app" / "tool.txt").read_text() == "from-tools\n"
    assert not (rootfs / "home" / "app").exists() and (rootfs / "home").is_dir()
    assert not (rootfs / "tool.txt").exists()  # the tools stage's file, not in this image
    layers = _layer_names(tmp_path / "check" / "layout")
    assert len(layers) == 4  # busybox, COPY, COPY --from, RUN
    assert sorted(layers[-1]) == ["app", "app/out.txt", "home", "home/.wh.app"]
    for name in (n for layer in layers for n in layer):
        assert not name.startswith(("kiln", "workspace", "proc", "etc/hosts", "var/run")), name
    assert _run_pushed(podman, ref, secret) == "hi hello from-tools\n"


def test_cleanup_lets_builds_follow_each_other_in_one_container(
    debug_executor_image: str,
    pod_base_image: str,
    registry: RegistryServer,
    podman: Podman,
    tmp_path: Path,
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    base = pod_base_image
    (workspace / "fail.Dockerfile").write_text(f"FROM {base}\nRUN echo partial > /p.txt; exit 3\n")
    (workspace / "one.Dockerfile").write_text(f"FROM {base}\nRUN echo one > /one.txt\n")
    (workspace / "two.Dockerfile").write_text(
        f"FROM {base}\nRUN test ! -e /one.txt && echo two > /two.txt\n"
    )
    kiln = (
        "/kiln/bin/python3 -s -m kiln.cli.main executor --isolation=inplace --cleanup "
        f"--context=dir:///workspace --insecure-registry={registry.host}"
    )
    restored = '[ -x /busybox/sh ] && [ ! -e /bin ] && [ ! -e "$1" ] && echo "restored $1"'
    script = f"""
        check() {{ {restored}; }}
        {kiln} -f fail.Dockerfile -d {registry.host}/pod/cleanup:fail; echo "fail=$?"; check /p.txt
        {kiln} -f one.Dockerfile -d {registry.host}/pod/cleanup:one; echo "one=$?"; check /one.txt
        {kiln} -f two.Dockerfile -d {registry.host}/pod/cleanup:two; echo "two=$?"; check /two.txt
    """
    result = podman.run(
        debug_executor_image,
        "-c",
        script,
        options=["--entrypoint", "/busybox/sh", "-v", f"{workspace}:/workspace"],
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    said = [word for word in result.stdout.split() if not word.startswith("sha256:")]
    assert said == [
        "fail=3", "restored", "/p.txt", "one=0", "restored", "/one.txt", "two=0", "restored",
        "/two.txt",
    ], result.stderr[-3000:]  # fmt: skip
    assert "Inplace: restoring / (--cleanup)" in result.stderr
    one = umoci_unpack(f"{registry.host}/pod/cleanup:one", tmp_path / "one")
    two = umoci_unpack(f"{registry.host}/pod/cleanup:two", tmp_path / "two")
    assert (one / "one.txt").read_text() == "one\n"
    assert (two / "two.txt").read_text() == "two\n" and not (two / "one.txt").exists()
