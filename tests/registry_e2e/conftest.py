"""Fixtures for registry end-to-end tests: mTLS and token-auth registries, fault proxies.

Why session scope: each fixture is a real process (or server thread); starting them once keeps the
suite fast, and every test uses its own repository names so they never interfere.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import base_image, busybox_layout
from tests.support.registry_server import RegistryServer
from tests.support.token_server import Grant, TokenServer

__all__ = ["base_image", "busybox_layout"]  # shared with tests/e2e (same session fixtures)

TOKEN_USER = "builder"
TOKEN_PASSWORD = "t0ken-pass"


def unique(prefix: str = "r4") -> str:
    """A fresh repository name."""
    return f"{prefix}/img-{uuid.uuid4().hex[:8]}"


def write_context(root: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    """A build context directory with a Dockerfile and files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(textwrap.dedent(dockerfile).lstrip())
    for name, content in (files or {}).items():
        (root / name).write_text(content)
    return root


@pytest.fixture(scope="session")
def mtls_registry() -> Iterator[RegistryServer]:
    """HTTPS registry that requires a client certificate signed by its CA."""
    with RegistryServer(mtls=True) as server:
        yield server


@pytest.fixture(scope="session")
def skopeo_cert_dir(
    mtls_registry: RegistryServer, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A `--cert-dir` for skopeo holding the mTLS registry's CA and a client certificate."""
    directory = tmp_path_factory.mktemp("skopeo-certs")
    assert mtls_registry.ca_path is not None and mtls_registry.client_cert is not None
    shutil.copy(mtls_registry.ca_path, directory / "ca.crt")
    shutil.copy(mtls_registry.client_cert[0], directory / "client.cert")
    shutil.copy(mtls_registry.client_cert[1], directory / "client.key")
    return directory


@pytest.fixture(scope="session")
def token_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenServer]:
    """Token service: `builder` may pull+push `team/*` and `public/*` and only pull `shared/*`;
    anonymous users may pull `public/*`."""
    server = TokenServer(
        tmp_path_factory.mktemp("token"),
        users={TOKEN_USER: TOKEN_PASSWORD},
        grants=[
            Grant(TOKEN_USER, "team/*", ("pull", "push")),
            Grant(TOKEN_USER, "public/*", ("pull", "push")),
            Grant(TOKEN_USER, "shared/*", ("pull",)),
            Grant("", "public/*", ("pull",)),
        ],
    )
    with server:
        yield server


@pytest.fixture(scope="session")
def token_registry(token_server: TokenServer) -> Iterator[RegistryServer]:
    """Plain-HTTP registry with `auth: token` trusting ``token_server``'s signing certificate."""
    with RegistryServer(auth_config=token_server.registry_auth_config()) as server:
        yield server


def skopeo_copy(source: str, dest: str, *flags: str) -> None:
    """`skopeo copy` with extra flags (TLS off unless flags say otherwise)."""
    subprocess.run(["skopeo", "copy", *flags, source, dest], check=True, capture_output=True)


def raw_digest(ref: str, *flags: str) -> str:
    """sha256 of the manifest bytes as `skopeo inspect --raw` gets them (TLS off by default)."""
    if not any(flag.startswith(("--cert-dir", "--tls-verify")) for flag in flags):
        flags = ("--tls-verify=false", *flags)
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", *flags, f"docker://{ref}"], check=True, capture_output=True
    ).stdout
    return "sha256:" + hashlib.sha256(raw).hexdigest()
