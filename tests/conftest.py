"""Shared pytest fixtures for kiln's test suite.

Each section below belongs to one area; keep sections self-contained so they can be edited
independently.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.local_dns import LocalDNS, NxdomainResponder
from tests.support.registry_server import RegistryServer
from tests.support.source_servers import GitFixture, serve_git_sources

pytest_plugins = ["tests.support.executor_fixtures"]

# ---------------------------------------------------------------------------------------------
# Registry fixtures (owner: registry). Real `docker-registry` processes, one per session.
# ---------------------------------------------------------------------------------------------

REGISTRY_USER = "kiln"
REGISTRY_PASSWORD = "s3cret-pass"


@pytest.fixture(scope="session")
def registry() -> Iterator[RegistryServer]:
    """Anonymous plain-HTTP registry at ``registry.host``."""
    with RegistryServer() as server:
        yield server


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[RegistryServer]:
    """Plain-HTTP registry requiring basic auth; credentials in ``auth_registry.htpasswd``."""
    with RegistryServer(htpasswd=(REGISTRY_USER, REGISTRY_PASSWORD)) as server:
        yield server


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[RegistryServer]:
    """Anonymous HTTPS registry; its certificate is signed by ``tls_registry.ca_path``."""
    with RegistryServer(tls=True) as server:
        yield server


DockerConfigFactory = Callable[..., Path]


@pytest.fixture
def docker_config(tmp_path_factory: pytest.TempPathFactory) -> DockerConfigFactory:
    """Factory writing a Docker ``config.json``; returns the directory (use as DOCKER_CONFIG).

    ``docker_config(host, user, password, extra={...})`` writes
    ``{"auths": {host: {"auth": base64("user:password")}}, **extra}``. ``host`` may be None to
    write only ``extra``.
    """

    def make(
        host: str | None = None,
        username: str = REGISTRY_USER,
        password: str = REGISTRY_PASSWORD,
        *,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        directory = tmp_path_factory.mktemp("docker-config")
        content: dict[str, Any] = {"auths": {}}
        if host is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            content["auths"][host] = {"auth": token}
        content.update(extra or {})
        (directory / "config.json").write_text(json.dumps(content))
        return directory

    return make


@pytest.fixture
def local_dns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalDNS]:
    """A loopback DNS server that says no name exists, and ``prefix``/``call`` to run a command
    or a test function whose resolver asks only it (the machine's resolver is never used)."""
    with NxdomainResponder() as responder:
        yield LocalDNS(responder, tmp_path_factory.mktemp("dns"))


# ------------------------------------------------------------------------- end registry fixtures


# ---------------------------------------------------------------------------------------------
# Remote build-context sources (owner: contexts): a real `git daemon`, git smart HTTP through
# `git http-backend`, and a file server for tarball URLs, all on 127.0.0.1, one per session.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def git_sources(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitFixture]:
    """Repositories ``app.git`` (branches main, feature; tag v1; a submodule) and ``lib.git``."""
    yield from serve_git_sources(tmp_path_factory.mktemp("git-sources"))


# ------------------------------------------------------------------ end remote context sources
