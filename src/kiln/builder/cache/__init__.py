"""The layer cache: keys for filesystem steps, a local store of step results, explanations.

Why a package of its own: computing what a step's result depends on, remembering results
between builds and saying why a step missed are three jobs the step loop only calls into.
"""

from kiln.builder.cache.keys import CacheKey, make_key
from kiln.builder.cache.local import CacheEntry, LocalCache
from kiln.builder.cache.stage_cache import BuildCache, CacheSettings, StageCache

__all__ = [
    "BuildCache",
    "CacheEntry",
    "CacheKey",
    "CacheSettings",
    "LocalCache",
    "StageCache",
    "make_key",
]
