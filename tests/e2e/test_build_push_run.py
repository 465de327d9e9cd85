"""End to end: Dockerfile + context -> kiln CLI -> real registry -> skopeo / umoci / podman."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests.support.podman import Podman
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, skopeo_inspect, umoci_unpack


def write_context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    for name, content in (files or {}).items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    return root


def build(registry: RegistryServer, context: Path, ref: str, *extra: str) -> str:
    """Build and push with kiln's docker-style flags; return the printed digest."""
    result = run_kiln(
        "build", "-t", ref, "--insecure-registry", registry.host, *extra, str(context)
    )
    assert result.returncode == 0, result.stderr
    digest = result.stdout.strip().splitlines()[-1]
    assert digest.startswith("sha256:")
    return digest


APP_DOCKERFILE = """
    FROM {base}
    ENV GREETING="hello from kiln" TARGET=world
    WORKDIR /app
    COPY hello.sh ./
    COPY data/ /app/data/
    RUN chmod +x hello.sh && echo built > /app/built.txt
    CMD ["/app/hello.sh"]
"""


def test_build_push_and_run(
    registry: RegistryServer, base_image: str, podman: Podman, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        APP_DOCKERFILE.format(base=base_image),
        {
            "hello.sh": '#!/bin/sh\necho "$GREETING, $TARGET"; cat /app/built.txt /app/data/x\n',
            "data/x": "payload\n",
        },
    )
    ref = f"{registry.host}/demo/app:1"
    digest = build(registry, context, ref)

    inspected = skopeo_inspect(ref)
    assert inspected["Digest"] == digest
    assert "GREETING=hello from kiln" in inspected["Env"]
    raw = json.loads(
        subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert raw["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    config = skopeo_inspect(ref, "--config")
    assert config["config"]["WorkingDir"] == "/app"
    assert config["config"]["Cmd"] == ["/app/hello.sh"]
    history = [h.get("created_by", "") for h in config["history"]]
    assert any(h.startswith("RUN /bin/sh -c chmod +x hello.sh") for h in history)
    assert len(config["rootfs"]["diff_ids"]) == len(raw["layers"])

    ran = podman.run(ref)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == ["hello from kiln, world", "built", "payload"]


def test_deleted_changed_linked_and_owned_files(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dockerfile = f"""
        FROM {base_image}
        RUN echo first > /tmp/changed && echo gone > /tmp/deleted && mkdir -p /opt/d
        RUN echo second > /tmp/changed && rm /tmp/deleted && rm /bin/vi
        RUN echo target > /opt/d/file && ln -s /opt/d/file /opt/link && ln /opt/d/file /opt/hard
        COPY --chown=1000:50 owned.txt /srv/owned.txt
        COPY --chown=app owned.txt /srv/by-name.txt
        COPY --chmod=0640 owned.txt /srv/moded.txt
    """
    context = write_context(tmp_path / "ctx", dockerfile, {"owned.txt": "mine\n"})
    ref = f"{registry.host}/demo/files:1"
    build(registry, context, ref)

    rootfs = umoci_unpack(ref, tmp_path / "unpacked")
    assert (rootfs / "tmp/changed").read_text() == "second\n"
    assert not (rootfs / "tmp/deleted").exists()
    assert not os.path.lexists(rootfs / "bin/vi"), "a base-layer file deleted by RUN must go"
    assert (rootfs / "bin/sh").exists()
    assert os.readlink(rootfs / "opt/link") == "/opt/d/file"
    hard, orig = os.stat(rootfs / "opt/hard"), os.stat(rootfs / "opt/d/file")
    assert (hard.st_ino, hard.st_nlink) == (orig.st_ino, 2)
    owned = os.stat(rootfs / "srv/owned.txt")
    assert (owned.st_uid, owned.st_gid) == (1000, 50)
    by_name = os.stat(rootfs / "srv/by-name.txt")
    assert (by_name.st_uid, by_name.st_gid) == (1000, 1000)
    assert os.stat(rootfs / "srv/moded.txt").st_mode & 0o7777 == 0o640


def test_failing_run_fails_the_build(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    dockerfile = f"""
        FROM {base_image}
        RUN echo about to fail && exit 7
    """
    context = write_context(tmp_path / "ctx", dockerfile)
    result = run_kiln(
        "build",
        "-t",
        f"{registry.host}/demo/fail:1",
        "--insecure-registry",
        registry.host,
        str(context),
    )
    assert result.returncode != 0
    assert "exit code: 7" in result.stderr
    assert "about to fail" in result.stdout + result.stderr
    listed = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{registry.host}/demo/fail"],
        capture_output=True,
        text=True,
    )
    assert '"1"' not in listed.stdout, "a failed build must push nothing"


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        """
        FROM scratch
        ENV A=1
        FROBNICATE all the things
        """,
    )
    result = run_kiln("build", "--no-push", "--tar-path", str(tmp_path / "x.tar"), str(context))
    assert result.returncode != 0
    assert f"{context / 'Dockerfile'}:3:" in result.stderr
    assert "FROBNICATE" in result.stderr.upper()


def test_kaniko_flags_tarball_layout_and_digest_file(
    registry: RegistryServer, base_image: str, podman: Podman, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""
        FROM {base_image}
        ARG WHO=nobody
        RUN echo "built for $WHO" > /who
        CMD ["cat", "/who"]
        """,
    )
    dockerfile = context / "Dockerfile"
    out = tmp_path / "out"
    dest1, dest2 = f"{registry.host}/demo/kaniko:1", f"{registry.host}/demo/kaniko:latest"
    result = run_kiln(
        "build",
        f"--context=dir://{context}",
        "--dockerfile",
        str(dockerfile),
        "--destination",
        dest1,
        "--destination",
        dest2,
        "--build-arg",
        "WHO=kaniko",
        "--insecure-registry",
        registry.host,
        "--tar-path",
        str(out / "app.tar"),
        "--oci-layout-path",
        str(out / "oci"),
        "--digest-file",
        str(out / "digest"),
        "--label",
        "org.example.team=builders",
    )
    assert result.returncode == 0, result.stderr
    digest = (out / "digest").read_text().strip()
    assert skopeo_inspect(dest1)["Digest"] == digest
    assert skopeo_inspect(dest2)["Digest"] == digest
    assert skopeo_inspect(dest1)["Labels"] == {"org.example.team": "builders"}
    # The layout holds the very manifest pushed (Docker media types: skopeo and umoci do not
    # read those from a layout, see tests/cli/test_outputs.py for an OCI-format build).
    (entry,) = json.loads((out / "oci" / "index.json").read_text())["manifests"]
    assert entry["digest"] == digest
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    archive = skopeo_inspect(f"docker-archive:{out / 'app.tar'}")
    assert archive["Layers"], archive
    loaded = podman.load(out / "app.tar")
    assert loaded.returncode == 0, loaded.stderr
    ran = podman.run(dest1)
    assert ran.stdout.strip() == "built for kaniko", ran.stderr


@pytest.mark.parametrize("use_config", [True, False])
def test_registry_auth_from_docker_config(
    auth_registry: RegistryServer,
    busybox_layout: Path,
    docker_config: object,
    tmp_path: Path,
    use_config: bool,
) -> None:
    from tests.conftest import REGISTRY_PASSWORD, REGISTRY_USER

    base = f"{auth_registry.host}/base/busybox:latest"
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"--dest-creds={REGISTRY_USER}:{REGISTRY_PASSWORD}",
            f"oci:{busybox_layout}:latest",
            f"docker://{base}",
        ],
        check=True,
        capture_output=True,
    )
    context = write_context(tmp_path / "ctx", f"FROM {base}\nRUN echo authed > /authed\n")
    env = {"DOCKER_CONFIG": str(tmp_path / "empty-config")}
    if use_config:
        assert callable(docker_config)
        env["DOCKER_CONFIG"] = str(docker_config(auth_registry.host))
    result = run_kiln(
        "build",
        "-t",
        f"{auth_registry.host}/demo/authed:1",
        "--insecure-registry",
        auth_registry.host,
        str(context),
        env=env,
    )
    if use_config:
        assert result.returncode == 0, result.stderr
        assert REGISTRY_PASSWORD not in result.stderr + result.stdout
    else:
        assert result.returncode != 0
        assert "401" in result.stderr or "unauthorized" in result.stderr.lower()


def test_tarball_of_untagged_destination_loads(podman: Podman, tmp_path: Path) -> None:
    """A destination without a tag is saved as `:latest`, which `podman load` accepts."""
    context = write_context(
        tmp_path / "ctx", "FROM scratch\nCOPY file.txt /file.txt\n", {"file.txt": "x\n"}
    )
    archive = tmp_path / "untagged.tar"
    result = run_kiln(
        "build",
        "--no-push",
        "-t",
        "127.0.0.1:1/untagged/app",
        "--tar-path",
        str(archive),
        str(context),
    )
    assert result.returncode == 0, result.stderr
    loaded = podman.load(archive)
    assert loaded.returncode == 0, loaded.stderr
    assert "127.0.0.1:1/untagged/app:latest" in loaded.stdout + loaded.stderr
