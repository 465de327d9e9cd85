"""The layer cache as the step loop sees it: look a step up before it runs, record it after.

Why two classes: ``BuildCache`` holds what every stage shares (where entries live, the options
that shape keys, the report); ``StageCache`` follows one stage's chain of keys, each step's
parent being the step before it (the stage's base for its first step), so a change anywhere
misses every later step of the stage, as in Docker.
"""

from __future__ import annotations

import json
import logging
import posixpath
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from kiln.builder.cache.copy_sources import context_file_inputs, has_unpinned_url
from kiln.builder.cache.explain import miss_reason
from kiln.builder.cache.keys import CacheKey, base_digest, digest_of, make_key, step_inputs
from kiln.builder.cache.local import CacheEntry, LocalCache, position_of
from kiln.builder.cache.replay import verified_layer
from kiln.builder.effects import CopyEffect, Effect, RunEffect
from kiln.builder.state import StageState
from kiln.context import BuildContext
from kiln.errors import BuildError, KilnError
from kiln.fs import BlobStore
from kiln.image import HistoryEntry, Layer
from kiln.image.atomic import atomic_write_bytes

log = logging.getLogger("kiln")

CACHED = "CACHED"


class RemoteCache(Protocol):
    """A cache shared through a registry (``registry_cache.RegistryCache``)."""

    def find(self, key: CacheKey) -> CacheEntry | None:
        """The entry for ``key`` (its blob left where it is), or None."""
        ...

    def layer(self, entry: CacheEntry) -> Layer:
        """The layer of ``entry``, read from the shared cache only when opened."""
        ...

    def push(self, entry: CacheEntry, layer: Layer) -> None:
        """Share ``entry`` in the background; a failure is a warning, never the build's."""
        ...

    def close(self) -> None:
        """Wait for the pushes under way."""
        ...


@dataclass(frozen=True)
class CacheSettings:
    """How this build caches: where, for how long, which steps, and what shapes layer bytes."""

    local: LocalCache | None
    remote: RemoteCache | None = None
    ttl: float | None = None  # seconds; older entries are misses
    run_layers: bool = True
    copy_layers: bool = True
    platform: str = ""
    layer_options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class StepRecord:
    """One step's line in the ``--cache-report``."""

    stage: str
    step: int
    instruction: str
    key: str | None
    hit: bool
    reason: str
    seconds: float
    inputs: Mapping[str, str]


@dataclass(frozen=True)
class Lookup:
    """A step looked up: its key (None: not cacheable), the cached layer on a hit, and the
    reason logged (``CACHED`` or why it missed)."""

    key: CacheKey | None
    layer: Layer | None
    reason: str
    position: str
    started: float


class BuildCache:
    """The cache for one build; ``records`` fill as steps run (stages may run in parallel)."""

    def __init__(self, settings: CacheSettings, store: BlobStore) -> None:
        self.settings = settings
        self.store = store
        self.records: list[StepRecord] = []
        self._lock = threading.Lock()

    def stage(
        self,
        label: str,
        filename: str,
        base_layers: Sequence[Layer],
        sources: Callable[[str], tuple[BuildContext, bool]],
        source_layers: Callable[[str], Sequence[Layer]],
        *,
        lookups: bool = True,
    ) -> StageCache:
        """The cache of one stage standing on ``base_layers``; ``source_layers`` gives the
        layers of a COPY --from stage or image, ``sources`` the context of a plain COPY.
        ``lookups`` False: the stage's steps all run (and are stored), as ``--no-cache-filter``
        asks."""
        base = base_digest((layer.diff_id for layer in base_layers), self.settings.platform)
        stage = StageCache(self, label, filename, base, sources, source_layers)
        stage.lookups = lookups
        return stage

    def add(self, record: StepRecord) -> None:
        """Add a step to the report."""
        with self._lock:
            self.records.append(record)

    def close(self) -> None:
        """Wait for the registry cache's pushes (the blobs they read must outlive them)."""
        if self.settings.remote is not None:
            self.settings.remote.close()

    def write_report(self, path: Path) -> None:
        """The ``--cache-report`` file: one JSON object per step, in the order they ended."""
        with self._lock:
            steps = [asdict(record) for record in self.records]
        try:
            atomic_write_bytes(path, json.dumps({"steps": steps}, indent=1).encode() + b"\n")
        except OSError as exc:
            raise BuildError(f"cannot write the cache report {path}: {exc.strerror}") from exc


class StageCache:
    """One stage's chain of keys (see the module docstring)."""

    def __init__(
        self,
        build: BuildCache,
        label: str,
        filename: str,
        base: str,
        sources: Callable[[str], tuple[BuildContext, bool]],
        source_layers: Callable[[str], Sequence[Layer]],
    ) -> None:
        self.build = build
        self.label = label
        self.filename = filename
        self.parent = base
        self.first = True
        self.lookups = True
        self._sources = sources
        self._source_layers = source_layers

    def look_up(self, number: int, keyword: str, state: StageState, effect: Effect) -> Lookup:
        """Find the step's cached layer, or say why there is none (logged either way)."""
        started = time.monotonic()
        position = position_of(self.filename, self.label, number)
        key, reason = self._key(keyword, state, effect)
        layer = None
        if key is not None:
            layer, reason = self._find(key, position, effect)
        self.first = False
        where = f"[stage {self.label}] STEP {number}"
        if layer is not None:
            log.info("%s: %s", where, CACHED)
        else:
            log.info("%s: cache miss: %s", where, reason)
        return Lookup(key, layer, reason, position, started)

    def record(
        self,
        lookup: Lookup,
        number: int,
        instruction: str,
        layer: Layer | None,
        history: HistoryEntry | None,
        state: StageState,
    ) -> None:
        """After the step: store what it made (on a miss), move the chain on, report it."""
        key = lookup.key
        if key is not None and layer is not None and lookup.layer is None:
            self._store(key, layer, history, state)
        local = self.build.settings.local
        if key is not None and local is not None:
            local.remember(lookup.position, key.inputs)
        # A step without a key still chains on: by what it made, so later steps can hit.
        after = (
            key.digest if key is not None else digest_of({"made": getattr(layer, "diff_id", None)})
        )
        self.parent = after
        self.build.add(
            StepRecord(
                stage=self.label,
                step=number,
                instruction=instruction,
                key=key.digest if key is not None else None,
                hit=lookup.layer is not None,
                reason=lookup.reason,
                seconds=round(time.monotonic() - lookup.started, 3),
                inputs=dict(key.inputs) if key is not None else {},
            )
        )

    def _key(self, keyword: str, state: StageState, effect: Effect) -> tuple[CacheKey | None, str]:
        settings = self.build.settings
        if isinstance(effect, RunEffect) and not settings.run_layers:
            return None, "caching of RUN layers is off"
        if isinstance(effect, CopyEffect) and not settings.copy_layers:
            return None, f"caching of {keyword} layers is off"
        inputs = step_inputs(self.parent, state, effect, settings.layer_options)
        if isinstance(effect, CopyEffect) and not effect.heredocs:
            if has_unpinned_url(effect):
                return None, "ADD of a URL without --checksum is never cached"
            try:
                inputs.update(self._copy_inputs(effect))
            except (KilnError, OSError) as exc:  # the step itself reports it, located
                return None, f"its sources cannot be read ({exc})"
        return make_key(inputs), ""

    def _copy_inputs(self, effect: CopyEffect) -> dict[str, str]:
        if effect.from_:
            layers = self._source_layers(effect.from_)
            return {f"from:{effect.from_}": digest_of([layer.diff_id for layer in layers])}
        context, _ = self._sources("")
        return context_file_inputs(context, effect)

    def _find(self, key: CacheKey, position: str, effect: Effect) -> tuple[Layer | None, str]:
        settings = self.build.settings
        if not self.lookups:
            return None, "the stage is excluded from the cache"
        if settings.local is None and settings.remote is None:
            return None, "no cache (neither a cache dir nor a cache repository)"
        local = settings.local
        previous = local.last_inputs(position) if local is not None else None
        entry = local.find(key.hex) if local is not None else None
        layer = self._stored_layer(entry) if entry is not None else None
        if layer is None and settings.remote is not None:
            # Not here, or here without its blob (kept from the registry by an earlier build
            # that never needed the files): the registry's entry, its blob left there.
            found = settings.remote.find(key)
            if found is not None:
                entry, layer = found, settings.remote.layer(found)
                if local is not None:  # the next build here needs one manifest GET, no more
                    _keep(local, found)
        if entry is None:
            where = _where(effect, self.filename)
            return None, miss_reason(previous, key.inputs, first_step=self.first, where=where)
        if settings.ttl is not None and time.time() - entry.created > settings.ttl:
            return None, "cache entry expired"
        if layer is None:
            if local is not None:
                local.forget(key.hex)
            return None, "cached layer blob missing or damaged"
        return layer, CACHED

    def _stored_layer(self, entry: CacheEntry) -> Layer | None:
        """The entry's layer from the local blob store, verified now; None if missing or
        damaged."""
        return verified_layer(
            self.build.store, entry.digest, entry.diff_id, entry.size, entry.media_type
        )

    def _store(
        self, key: CacheKey, layer: Layer, history: HistoryEntry | None, state: StageState
    ) -> None:
        entry = CacheEntry(
            key=key.digest,
            digest=layer.digest,
            diff_id=layer.diff_id,
            size=layer.size,
            media_type=layer.media_type,
            history=history.to_dict() if history is not None else {},
            config=dict(state.config.to_dict().get("config") or {}),
            created=time.time(),
            inputs=key.inputs,
        )
        settings = self.build.settings
        if settings.local is not None:
            _keep(settings.local, entry)
        if settings.remote is not None:
            settings.remote.push(entry, layer)


def _keep(local: LocalCache, entry: CacheEntry) -> None:
    """Store ``entry`` locally; a full or read-only cache dir costs the cache, not the build."""
    try:
        local.store(entry)
    except OSError as exc:
        log.warning("Layer %s not cached in %s: %s", entry.digest, local.root, exc.strerror)


def _where(effect: Effect, filename: str) -> str:
    """The instruction a changed file belongs to: ``COPY src/ at Dockerfile:7``."""
    if isinstance(effect, CopyEffect):
        keyword = "ADD" if effect.is_add else "COPY"
        name = posixpath.basename(filename)
        return f"{keyword} {' '.join(effect.sources)} at {name}:{effect.line}"
    return filename
