"""Which layer cache a build uses, from its options: local, registry, both or none.

Why apart from the builder: the rules (the cache dir holds a local cache unless ``no_cache``,
read-only when it was only named by ``--cache-from``;
``cache``/``cache_repo`` add a registry cache, Kaniko's default repository being the first
destination's ``/cache``; which options change layer bytes and so belong in every key) are
policy the build loop should only receive as one value.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.builder.cache import BuildCache, CacheEntry, CacheSettings, LocalCache
from kiln.builder.cache.stage_cache import RemoteCache
from kiln.builder.options import BuildOptions
from kiln.builder.registries import RegistryPool
from kiln.dockerfile.durations import DurationError, parse_duration
from kiln.errors import Remedy, UsageError
from kiln.fs import BlobStore
from kiln.registry import Reference


def open_build_cache(
    options: BuildOptions, store: BlobStore, pool: RegistryPool, epoch: int | None
) -> BuildCache | None:
    """The build's cache, or None when nothing is cached nor reported."""
    if options.no_cache:
        local = None
        remote: RemoteCache | None = None
    else:
        local = _local(options)
        remote = _remote(options, store, pool)
    if local is None and remote is None and options.cache_report is None:
        return None
    settings = CacheSettings(
        local=local,
        remote=remote,
        ttl=options.cache_ttl,
        run_layers=options.cache_run_layers,
        copy_layers=options.cache_copy_layers,
        platform=str(options.platform),
        layer_options={
            "compression": options.compression,
            "level": options.compression_level,
            "source_date_epoch": epoch,
            "format": options.image_format,
        },
    )
    return BuildCache(settings, store)


def _local(options: BuildOptions) -> LocalCache | None:
    if options.cache_dir is None:
        return None
    if options.write_local_cache:
        return LocalCache(options.cache_dir)
    return ReadOnlyLocalCache(options.cache_dir)


class ReadOnlyLocalCache(LocalCache):
    """A local cache that is looked up and never changed (``--cache-from type=local,src=DIR``
    without ``--cache-to`` there): entries and the miss-explaining index stay as they were."""

    def store(self, entry: CacheEntry) -> None:
        """Nothing is added to a cache only read from."""

    def forget(self, key_hex: str) -> None:
        """A damaged entry stays too (this build just misses it)."""

    def remember(self, position: str, inputs: Mapping[str, str]) -> None:
        """Nor is the index moved on."""


def cache_repository(options: BuildOptions) -> Reference | None:
    """``cache_repo``, else with ``cache`` Kaniko's ``<first destination's repo>/cache``."""
    if options.cache_repo is not None:
        return options.cache_repo
    if not options.cache:
        return None
    if not options.destinations:
        raise UsageError(
            "the registry cache needs a repository: there is no destination to derive it from",
            hint="give {0}, or a destination",
            remedies=[Remedy("cache_repo", "REGISTRY/REPO")],
        )
    first = options.destinations[0]
    return Reference.parse(f"{first.registry}/{first.repository}/cache")


def _remote(options: BuildOptions, store: BlobStore, pool: RegistryPool) -> RemoteCache | None:
    repository = cache_repository(options)
    if repository is None:
        return None
    from kiln.builder.cache.registry_cache import RegistryCache

    return RegistryCache(repository, pool, store, push=options.push_cache)


def parse_cache_ttl(text: str) -> float:
    """Seconds in a Go duration (Kaniko's ``--cache-ttl``, e.g. ``336h``); a UsageError
    names a malformed one."""
    try:
        nanos = parse_duration(text)
    except DurationError as exc:
        raise UsageError(f"cache TTL {text!r} is not a duration: {exc}", hint=_TTL_HINT) from None
    if nanos <= 0:
        raise UsageError(f"cache TTL {text!r} must be positive", hint=_TTL_HINT)
    return nanos / 1e9


_TTL_HINT = "write it as Go does, e.g. 336h, 90m or 1h30m"
