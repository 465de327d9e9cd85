"""One place that turns registry options into configured clients, and references into sources.

Why: pulls and pushes to the same host should share one client (and so its auth tokens), and the
rules for plain HTTP, TLS (CA files, client certificates, verification), credentials and mirrors
must be applied the same way everywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar

from kiln.builder.options import RegistryOptions
from kiln.errors import UsageError
from kiln.registry import Credentials, Reference, RegistryClient, load_credentials
from kiln.registry.reference import DOCKER_HUB, normalize_registry

T = TypeVar("T")

#: Parallel blob transfers per image (uploads and downloads).
TRANSFER_THREADS = 4


class RegistryPool:
    """Lazily created clients, one per (registry, push?) pair; safe to use from threads."""

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self._clients: dict[tuple[str, bool], RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, registry: str, *, push: bool) -> RegistryClient:
        """The client for registry, configured for pulling or pushing.

        Pulls and pushes share one client when their settings agree (the usual case): one
        ping, one connection pool and one token cache serve the base image and the push.
        """
        key = (registry, push)
        with self._lock:
            if key not in self._clients:
                other = self._clients.get((registry, not push))
                if other is not None and self._settings(registry, push) == self._settings(
                    registry, not push
                ):
                    self._clients[key] = other
                else:
                    self._clients[key] = self._make(registry, push)
            return self._clients[key]

    def _settings(self, registry: str, push: bool) -> tuple[bool, bool, int]:
        """What differs between a pull and a push client of one registry."""
        opts = self.options
        return (
            opts.is_insecure(registry, push=push),
            opts.skips_tls_verify(registry, push=push),
            opts.push_retry if push else opts.pull_retry,
        )

    def client_with(self, registry: str, credentials: Credentials) -> RegistryClient:
        """A pull-configured client for registry using ``credentials`` instead of config.json."""
        client = self._make(registry, False, credentials)
        with self._lock:
            self._clients[(f"{registry}#explicit", False)] = client
        return client

    def _make(
        self, registry: str, push: bool, credentials: Credentials | None = None
    ) -> RegistryClient:
        opts = self.options
        ca_file = _lookup(opts.registry_certificates, registry)
        client_cert = _lookup(opts.registry_client_certs, registry)
        insecure, skip_tls_verify, retries = self._settings(registry, push)
        return RegistryClient(
            registry,
            insecure=insecure,
            skip_tls_verify=skip_tls_verify,
            ca_file=Path(ca_file) if ca_file is not None else None,
            client_cert=(Path(client_cert[0]), Path(client_cert[1])) if client_cert else None,
            credentials=credentials or load_credentials(registry, opts.docker_config_dir),
            retries=retries,
        )

    def pull_sources(self, ref: Reference) -> list[Reference]:
        """Where to pull ``ref`` from, in order: its mirrors, then (normally) ``ref`` itself.

        ``--registry-map ORIG=M1;M2`` applies to any registry, ``--registry-mirror`` to Docker
        Hub; a mirror may carry a path prefix (``mirror.example/hub``).
        ``--skip-default-registry-fallback`` drops the origin when mirrors exist.
        """
        opts = self.options
        mirrors = list(_lookup(opts.registry_maps, ref.registry) or ())
        if ref.registry == DOCKER_HUB:
            mirrors.extend(opts.registry_mirrors)
        sources = [mirror_reference(ref, mirror) for mirror in mirrors]
        if not sources or not opts.skip_default_registry_fallback:
            sources.append(ref)
        return sources

    def close(self) -> None:
        """Release every client's connections."""
        with self._lock:
            for client in {id(c): c for c in self._clients.values()}.values():
                client.close()
            self._clients.clear()


def _lookup(table: Mapping[str, T], registry: str) -> T | None:
    """``table[registry]``, also when the user wrote a Docker Hub alias or a URL as the key."""
    for key, value in table.items():
        if normalize_registry(_host_of(key)) == normalize_registry(registry):
            return value
    return None


def _host_of(text: str) -> str:
    for scheme in ("https://", "http://"):
        if text.startswith(scheme):
            text = text[len(scheme) :]
    return text.split("/", 1)[0]


def mirror_reference(ref: Reference, mirror: str) -> Reference:
    """``ref`` as found on ``mirror`` (``host[:port][/path/prefix]``, scheme optional)."""
    for scheme in ("https://", "http://"):
        if mirror.startswith(scheme):
            mirror = mirror[len(scheme) :]
    host, _, prefix = mirror.strip("/").partition("/")
    if not host:
        raise UsageError(f"invalid registry mirror {mirror!r}", hint="use HOST[:PORT][/PREFIX]")
    repository = f"{prefix.strip('/')}/{ref.repository}" if prefix else ref.repository
    checked = Reference.parse(f"{host}/{repository}:{ref.tag or 'latest'}")
    return Reference(checked.registry, checked.repository, ref.tag, ref.digest)
