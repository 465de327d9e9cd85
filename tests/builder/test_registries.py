"""RegistryPool: pulls and pushes share a registry's client exactly when their settings agree."""

from __future__ import annotations

import pytest

from kiln.builder.options import RegistryOptions
from kiln.builder.registries import RegistryPool


def test_one_client_serves_pulls_and_pushes_with_the_same_settings() -> None:
    pool = RegistryPool(RegistryOptions(insecure_registries=("reg.test:5000",)))
    push = pool.client("reg.test:5000", push=True)
    assert pool.client("reg.test:5000", push=False) is push  # one ping, one connection pool
    assert pool.client("other.test", push=False) is not push
    pool.close()


@pytest.mark.parametrize(
    "options",
    [
        RegistryOptions(insecure_pull=True),
        RegistryOptions(skip_tls_verify_push=True),
        RegistryOptions(push_retry=5),
    ],
)
def test_different_settings_get_different_clients(options: RegistryOptions) -> None:
    pool = RegistryPool(options)
    pull = pool.client("reg.test", push=False)
    push = pool.client("reg.test", push=True)
    assert push is not pull
    assert (pull.base_url.startswith("http:"), push.base_url.startswith("http:")) == (
        options.insecure_pull,
        options.insecure_push,
    )
    pool.close()
