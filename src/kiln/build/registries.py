"""One place that turns registry options into configured clients.

Why: pulls and pushes to the same host should share one client (and so its auth tokens), and the
rules for plain HTTP, TLS verification and credentials must be applied the same way everywhere.
"""

from __future__ import annotations

from kiln.build.options import RegistryOptions
from kiln.registry import RegistryClient, load_credentials


class RegistryPool:
    """Lazily created clients, one per (registry, push?) pair."""

    def __init__(self, options: RegistryOptions) -> None:
        self.options = options
        self._clients: dict[tuple[str, bool], RegistryClient] = {}

    def client(self, registry: str, *, push: bool) -> RegistryClient:
        """The client for registry, configured for pulling or pushing."""
        key = (registry, push)
        if key not in self._clients:
            opts = self.options
            self._clients[key] = RegistryClient(
                registry,
                insecure=opts.is_insecure(registry, push=push),
                skip_tls_verify=opts.skips_tls_verify(registry, push=push),
                credentials=load_credentials(registry, opts.docker_config_dir),
                retries=opts.push_retry if push else opts.pull_retry,
            )
        return self._clients[key]

    def close(self) -> None:
        """Release every client's connections."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
