"""Bearer tokens for real: `auth: token` in the distribution registry, our token server.

The registry itself checks every token's signature and scopes, so a wrong scope fails for real.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from kiln.errors import AuthError
from kiln.registry import Credentials, RegistryClient, pull_image
from tests.conftest import DockerConfigFactory
from tests.registry.images import OCI_MANIFEST, make_image, push_image, sha256
from tests.registry_e2e.conftest import (
    TOKEN_PASSWORD,
    TOKEN_USER,
    raw_digest,
    skopeo_copy,
    unique,
    write_context,
)
from tests.support.registry_server import RegistryServer
from tests.support.token_server import TokenServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry

CREDS = Credentials(username=TOKEN_USER, password=TOKEN_PASSWORD)


def client(registry: RegistryServer, creds: Credentials | None = CREDS) -> RegistryClient:
    return RegistryClient(registry.host, insecure=True, credentials=creds, retries=0)


def test_push_and_pull_with_scoped_tokens(
    token_registry: RegistryServer, token_server: TokenServer
) -> None:
    repo = unique("team")
    image = make_image("token")
    before = len(token_server.requests)
    with client(token_registry) as c:
        assert push_image(c, repo, "v1", image) == image.digest
        assert pull_image(c, repo, "v1").config_bytes == image.config
    asked = [r.scopes for r in token_server.requests[before:]]
    assert [f"repository:{repo}:pull,push"] in asked
    assert all(r.user == TOKEN_USER for r in token_server.requests[before:])


def test_anonymous_token_pulls_public_but_cannot_push(token_registry: RegistryServer) -> None:
    repo = unique("public")
    image = make_image("anon")
    with client(token_registry) as c:
        push_image(c, repo, "v1", image)
    with client(token_registry, None) as anonymous:
        assert pull_image(anonymous, repo, "v1").manifest_digest == image.digest
        with pytest.raises(AuthError) as caught:
            push_image(anonymous, repo, "v2", make_image("anon2"))
    assert caught.value.status == 401


def test_wrong_scope_is_refused_by_the_registry(
    token_registry: RegistryServer, token_server: TokenServer
) -> None:
    repo = unique("shared")
    with client(token_registry) as c, pytest.raises(AuthError) as caught:
        c.upload_blob(repo, sha256(b"x"), 1, lambda: io.BytesIO(b"x"))
    assert caught.value.status == 401
    assert TOKEN_PASSWORD not in str(caught.value)
    # The token server granted only pull: the registry refused the push itself.
    last = token_server.requests[-1]
    assert last.granted == [{"type": "repository", "name": repo, "actions": ["pull"]}]


def test_cross_repo_mount_uses_one_token_for_two_repositories(
    token_registry: RegistryServer, token_server: TokenServer
) -> None:
    source, target = unique("team"), unique("team")
    image = make_image("mount")
    layer = image.layers[0]
    with client(token_registry) as c:
        push_image(c, source, "v1", image)
        before = len(token_server.requests)
        c.upload_blob(target, sha256(layer), len(layer), _never_opened, mount_from=source)
        assert c.blob_exists(target, sha256(layer))
    scopes = {tuple(r.scopes) for r in token_server.requests[before:]}
    assert tuple(sorted([f"repository:{target}:pull,push", f"repository:{source}:pull"])) in scopes


def _never_opened() -> io.BytesIO:
    raise AssertionError("a mounted blob must not be uploaded")


def test_token_refreshed_for_new_scope_and_on_expiry(
    token_registry: RegistryServer, token_server: TokenServer
) -> None:
    repo = unique("team")
    image = make_image("refresh")
    with client(token_registry) as c:
        push_image(c, repo, "v1", image)
    with client(token_registry) as c:
        before = len(token_server.requests)
        pull_image(c, repo, "v1")  # pull scope: one token
        pull_image(c, repo, "v1")  # cached
        assert len(token_server.requests) == before + 1
        c.put_manifest(repo, "v2", image.manifest, OCI_MANIFEST)  # push scope: a new token
        assert len(token_server.requests) == before + 2
        assert token_server.requests[-1].scopes == [f"repository:{repo}:pull,push"]
    token_server.lifetime = 2  # the client refreshes tokens well before they expire
    try:
        with client(token_registry) as c:
            pull_image(c, repo, "v1")
            count = len(token_server.requests)
            time.sleep(1.2)
            pull_image(c, repo, "v1")
            assert len(token_server.requests) == count + 1
    finally:
        token_server.lifetime = 300


def test_build_with_token_auth_keeps_secrets_out_of_logs(
    token_registry: RegistryServer,
    busybox_layout: Path,
    docker_config: DockerConfigFactory,
    tmp_path: Path,
) -> None:
    base = f"{token_registry.host}/{unique('public')}:latest"
    skopeo_copy(
        f"oci:{busybox_layout}:latest",
        f"docker://{base}",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{TOKEN_USER}:{TOKEN_PASSWORD}",
    )
    config = docker_config(token_registry.host, TOKEN_USER, TOKEN_PASSWORD)
    context = write_context(tmp_path / "ctx", f"FROM {base}\nCOPY a /a\n", {"a": "a"})
    dest = f"{token_registry.host}/{unique('team')}:v1"
    ok = run_kiln(
        "build", "-t", dest, "--insecure-registry", token_registry.host, "-v", "trace",
        str(context), env={"DOCKER_CONFIG": str(config)},
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert raw_digest(dest, "--creds", f"{TOKEN_USER}:{TOKEN_PASSWORD}") == ok.stdout.split()[-1]
    denied_dest = f"{token_registry.host}/{unique('shared')}:v1"
    denied = run_kiln(
        "build", "-t", denied_dest, "--insecure-registry", token_registry.host, "-v", "trace",
        str(context), env={"DOCKER_CONFIG": str(config)},
    )  # fmt: skip
    assert denied.returncode != 0
    assert "no permission to push" in denied.stderr
    assert "--skip-push-permission-check" in denied.stderr
    for output in (ok.stdout, ok.stderr, denied.stdout, denied.stderr):
        assert TOKEN_PASSWORD not in output
        assert "eyJ" not in output  # no JWT (header or claims) was printed
