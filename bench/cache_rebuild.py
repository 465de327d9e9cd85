"""The ``ci-rebuild`` and ``no-change`` scenarios: a CI pod's rebuild from a registry cache.

Why its own flow: these scenarios measure the *second* build. Each builder first builds the
service once with its registry cache on (not measured), filling the cache; then, for
``ci-rebuild``, one source file changes; then the builder's local state is reset (as a new CI
pod has nothing but the registry) and the rebuild is measured, counting the bytes it moved
to and from the registry through the relay. The source is restored afterwards, so every
builder's fill build sees the same tree. Each run's edit is new (it names the run), so a later
run's rebuild cannot hit a cache entry an earlier run's rebuild wrote.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

from builders import RegistryCache
from measure import Sample
from scenarios import Scenario, change_source, write_sources
from tests.support.relay import Relay


class CachingBuilder(Protocol):
    """What the flow needs of a builder (``builders.py``'s classes all fit)."""

    name: str

    def reset(self) -> None: ...

    def build(self, context: Path, ref: str, cache: RegistryCache | None = None) -> Sample: ...


def measure_rebuild(builder: CachingBuilder, scenario: Scenario, relay: Relay, run: int) -> Sample:
    """Fill the builder's registry cache, then time a rebuild from empty local state."""
    repo = f"{relay.host}/bench/{scenario.name}"
    cache = RegistryCache(
        repo=f"{relay.host}/bench-cache/{builder.name}", image=f"{repo}:{builder.name}-fill"
    )
    write_sources(scenario.context)
    builder.reset()
    builder.build(scenario.context, cache.image, cache)
    if scenario.rebuild == "change":
        change_source(scenario.context, f"in run {run} by {builder.name}")
    builder.reset()
    relay.reset()
    try:
        sample = builder.build(scenario.context, f"{repo}:{builder.name}-{run}", cache)
    finally:
        write_sources(scenario.context)
    downloaded, uploaded = relay.counts()
    return dataclasses.replace(sample, downloaded=downloaded, uploaded=uploaded)
