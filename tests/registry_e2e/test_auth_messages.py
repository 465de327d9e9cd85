"""What a 401/403 says, against real registries (htpasswd and token auth): whether credentials
were sent, for which registry, from which source (config.json, a credential helper, ``kiln
login``), the HTTP status once, and never the secret."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kiln.errors import AuthError
from kiln.registry import Credentials, RegistryClient, load_credentials
from tests.conftest import REGISTRY_USER, DockerConfigFactory
from tests.registry.images import make_image, push_image
from tests.registry_e2e.conftest import TOKEN_PASSWORD, TOKEN_USER, unique, write_context
from tests.support.fault_proxy import Fault, FaultProxy
from tests.support.registry_server import RegistryServer
from tests.support.token_server import TokenServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry

WRONG = "wrong-Secret-123"


def _push(context: Path, host: str, env: dict[str, str]) -> str:
    """Build and push to ``host``; return stderr of the (expected) failure."""
    result = run_kiln(
        "build", "-t", f"{host}/{unique()}:v1", "--insecure-registry", host, str(context), env=env
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture
def context(tmp_path: Path) -> Path:
    return write_context(tmp_path / "ctx", "FROM scratch\nCOPY a /a\n", {"a": "a"})


def test_refused_config_json_credentials_are_named(
    auth_registry: RegistryServer, docker_config: DockerConfigFactory, context: Path
) -> None:
    directory = docker_config(auth_registry.host, password=WRONG)
    stderr = _push(context, auth_registry.host, {"DOCKER_CONFIG": str(directory)})
    assert (
        f"the registry refused the credentials for {auth_registry.host} "
        f"(user '{REGISTRY_USER}', from {directory / 'config.json'})"
    ) in stderr
    assert stderr.count("HTTP 401") == 1
    assert WRONG not in stderr


def test_no_credentials_says_none_were_sent(
    auth_registry: RegistryServer, context: Path, tmp_path: Path
) -> None:
    stderr = _push(context, auth_registry.host, {"DOCKER_CONFIG": str(tmp_path / "empty")})
    assert f"no credentials were sent: none are configured for {auth_registry.host}" in stderr
    assert f"kiln login {auth_registry.host}" in stderr  # the hint
    assert stderr.count("HTTP 401") == 1


def test_credential_helper_is_named_as_the_source(
    auth_registry: RegistryServer, context: Path, tmp_path: Path
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-kilntest"
    answer = json.dumps({"Username": REGISTRY_USER, "Secret": WRONG})
    helper.write_text(f"#!/bin/sh\ncat >/dev/null\necho '{answer}'\n")
    helper.chmod(0o755)
    config = tmp_path / "docker"
    config.mkdir()
    (config / "config.json").write_text(
        json.dumps({"credHelpers": {auth_registry.host: "kilntest"}})
    )
    env = {"DOCKER_CONFIG": str(config), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    stderr = _push(context, auth_registry.host, env)
    assert (
        f"the registry refused the credentials for {auth_registry.host} "
        f"(user '{REGISTRY_USER}', from the credential helper docker-credential-kilntest)"
    ) in stderr
    assert WRONG not in stderr


def test_kiln_login_names_itself(auth_registry: RegistryServer, tmp_path: Path) -> None:
    host = auth_registry.host
    result = run_kiln(
        "login", host, "-u", REGISTRY_USER, "--password-stdin", "--insecure-registry", host,
        env={"DOCKER_CONFIG": str(tmp_path)}, input=WRONG + "\n",
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        f"the registry refused the credentials for {host} (user '{REGISTRY_USER}', from kiln login)"
    ) in result.stderr
    assert result.stderr.count("HTTP 401") == 1
    assert WRONG not in result.stderr


def test_accepted_credentials_without_the_right_get_a_403_explained(
    auth_registry: RegistryServer, docker_config: DockerConfigFactory, context: Path
) -> None:
    with FaultProxy(auth_registry.host) as proxy:
        denied = {"errors": [{"code": "DENIED", "message": "requested access denied"}]}
        proxy.rule = lambda method, path: (
            Fault("reply", status=403, body=json.dumps(denied).encode())
            if method == "POST"
            else None
        )
        directory = docker_config(proxy.host)  # the right password, for the proxy's address
        stderr = _push(context, proxy.host, {"DOCKER_CONFIG": str(directory)})
    assert (
        f"the credentials for {proxy.host} (user '{REGISTRY_USER}', from "
        f"{directory / 'config.json'}) were accepted but do not allow this"
    ) in stderr
    assert stderr.count("HTTP 403") == 1


def test_token_service_refusal_and_scope_are_told_apart(
    token_registry: RegistryServer, token_server: TokenServer, docker_config: DockerConfigFactory
) -> None:
    token_host = urlsplit(token_server.realm).netloc
    directory = docker_config(token_registry.host, TOKEN_USER, WRONG)
    wrong = load_credentials(token_registry.host, directory)
    with (
        RegistryClient(token_registry.host, insecure=True, credentials=wrong, retries=0) as c,
        pytest.raises(AuthError) as refused,
    ):
        push_image(c, unique("team"), "v1", make_image("refused"))
    text = str(refused.value)
    assert f"the token service {token_host} refused the credentials for {token_registry.host}" in (
        text
    )
    assert WRONG not in text and text.count("HTTP 401") == 1

    right = Credentials(TOKEN_USER, TOKEN_PASSWORD, source="a test")
    with (
        RegistryClient(token_registry.host, insecure=True, credentials=right, retries=0) as c,
        pytest.raises(AuthError) as scoped,
    ):
        push_image(c, unique("shared"), "v1", make_image("pull-only"))  # builder may only pull
    assert (
        f"(user '{TOKEN_USER}', from a test) were sent to the token service {token_host}, but "
        "its token does not allow this"
    ) in str(scoped.value)
    assert TOKEN_PASSWORD not in str(scoped.value)
