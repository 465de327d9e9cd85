"""`kiln warm` + `--cache-dir` (no blob downloads, counted at a proxy), `kiln push`,
`kiln login`."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.conftest import REGISTRY_PASSWORD, REGISTRY_USER
from tests.registry_e2e.conftest import raw_digest, unique, write_context
from tests.support.fault_proxy import FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln, skopeo_inspect

pytestmark = pytest.mark.registry


def test_warm_cache_means_no_blob_downloads(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    repository = base_image.split("/", 1)[1]
    with FaultProxy(registry.host) as proxy:
        base = f"{proxy.host}/{repository}"
        cache = tmp_path / "cache"
        warmed = run_kiln("warm", "--image", base, "--cache-dir", str(cache),
                          "--insecure-registry", proxy.host)  # fmt: skip
        assert warmed.returncode == 0, warmed.stderr
        assert proxy.count("GET", "/blobs/sha256:") >= 2  # config and layer
        digest = raw_digest(base_image)
        for n, source in enumerate((base, f"{base}@{digest}")):
            proxy.seen.clear()
            context = write_context(tmp_path / f"ctx{n}", f"FROM {source}\nCOPY a /a\n", {"a": "a"})
            built = run_kiln(
                "build", "--no-push", "--cache-dir", str(cache), "--insecure-registry",
                proxy.host, str(context),
            )  # fmt: skip
            assert built.returncode == 0, built.stderr
            assert proxy.count("GET", "/blobs/") == 0, proxy.seen
        assert proxy.count("GET", "/manifests/") == 0  # a pinned digest is served from the cache


def test_push_saved_layout_and_tarball(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {base_image}\nCOPY a /a\n", {"a": "saved"})
    layout, tarball = tmp_path / "layout", tmp_path / "image.tar"
    built = run_kiln(
        "build", "--no-push", "--oci-layout-path", str(layout), "--tar-path", str(tarball),
        "--image-format", "oci", "--insecure-registry", registry.host, str(context),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    digest = built.stdout.split()[-1]
    dest = f"{registry.host}/{unique()}:v1"
    pushed = run_kiln("push", str(layout), "-d", dest, "--insecure-registry", registry.host)
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.split()[-1] == digest == raw_digest(dest)  # exact bytes kept
    dest2 = f"{registry.host}/{unique()}:v1"
    from_tar = run_kiln("push", str(tarball), "-d", dest2, "--insecure-registry", registry.host)
    assert from_tar.returncode == 0, from_tar.stderr
    assert raw_digest(dest2) == from_tar.stdout.split()[-1] == digest  # the tar holds it too
    assert len(skopeo_inspect(dest2)["Layers"]) == len(skopeo_inspect(dest)["Layers"])


def test_login_writes_docker_config(auth_registry: RegistryServer, tmp_path: Path) -> None:
    config_dir = tmp_path / "docker"
    config_dir.mkdir()
    (config_dir / "config.json").write_text(json.dumps({"credHelpers": {"x.io": "gcr"}}))
    env = {"DOCKER_CONFIG": str(config_dir)}
    host = auth_registry.host
    wrong = run_kiln("login", host, "-u", REGISTRY_USER, "--password-stdin",
                     "--insecure-registry", host, env=env, input="nope\n")  # fmt: skip
    assert wrong.returncode == 1 and "nope" not in wrong.stderr
    ok = run_kiln("login", host, "-u", REGISTRY_USER, "--password-stdin",
                  "--insecure-registry", host, env=env, input=REGISTRY_PASSWORD + "\n")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert REGISTRY_PASSWORD not in ok.stdout + ok.stderr
    config = json.loads((config_dir / "config.json").read_text())
    assert config["credHelpers"] == {"x.io": "gcr"}  # other entries kept
    pair = base64.b64decode(config["auths"][host]["auth"]).decode()
    assert pair == f"{REGISTRY_USER}:{REGISTRY_PASSWORD}"
    assert (config_dir / "config.json").stat().st_mode & 0o777 == 0o600
    # The stored credentials work for a build.
    context = write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})
    built = run_kiln("build", "-t", f"{host}/{unique()}:v1", "--insecure-registry", host,
                     str(context), env=env)  # fmt: skip
    assert built.returncode == 0, built.stderr
