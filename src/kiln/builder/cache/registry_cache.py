"""The layer cache in a registry (Kaniko's ``--cache-repo``): one tag per step key.

Why a registry: builds run in throwaway pods that share nothing but a registry, so a pod with
an empty disk must still find the layers an earlier pod made. Each entry is an ordinary OCI
image manifest tagged with the key's hex: its one layer is the step's, its config a small
image config recording the key, the named inputs, the step's history entry and the config
after the step. A lookup is a manifest GET (404: a miss); an entry goes up on a background
thread after its step. A hit downloads nothing: its layer stays a ``RemoteLayer`` until a step
needs the files. Nothing the cache does ever fails the build: a registry that cannot
be read is a miss, one that refuses a push a warning naming what was not cached.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kiln.builder.cache.keys import CacheKey
from kiln.builder.cache.local import CacheEntry
from kiln.builder.registries import RegistryPool
from kiln.builder.remote_layer import RemoteLayer
from kiln.errors import KilnError, RegistryError
from kiln.fs import BlobStore
from kiln.image import Layer
from kiln.image.mediatypes import OCI_CONFIG, OCI_MANIFEST
from kiln.registry import Reference

log = logging.getLogger("kiln")

#: Where the cache facts live in the entry's image config.
_FACTS = "kiln.cache"
#: Pushes at once (they overlap the build's own steps; the build's push has its own threads).
_PUSH_THREADS = 2


class RegistryCache:
    """Entries under ``repository`` (``REGISTRY/REPO``; its tag, if any, is ignored)."""

    def __init__(
        self, repository: Reference, pool: RegistryPool, store: BlobStore, *, push: bool = True
    ) -> None:
        self.registry = repository.registry
        self.repo = repository.repository
        self.pool = pool
        self.store = store
        self.push_enabled = push
        self._pushes: list[Future[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._warned_read = False

    def find(self, key: CacheKey) -> CacheEntry | None:
        """The entry tagged ``key.hex`` (its manifest and config: the layer blob stays in the
        registry, see ``layer``); None on a miss or when the registry cannot be read (warned
        once)."""
        client = self.pool.client(self.registry, push=False)
        try:
            data, _, _ = client.get_manifest(self.repo, key.hex, (OCI_MANIFEST,))
            manifest = json.loads(data)
            config = io.BytesIO()
            client.fetch_blob(self.repo, str(manifest["config"]["digest"]), config)
            entry = _entry_from_config(json.loads(config.getvalue()), manifest)
            return entry if entry.key == key.digest else None
        except RegistryError as exc:
            if exc.status != 404:
                self._warn_read(exc)
            return None
        except (KilnError, ValueError, KeyError, TypeError, OSError) as exc:
            self._warn_read(exc)
            return None

    def layer(self, entry: CacheEntry) -> Layer:
        """The layer of ``entry`` as it is in the registry: downloaded (and verified) only
        when a step needs the files, pushed elsewhere by a mount or a stream."""
        return RemoteLayer(
            entry.digest, entry.diff_id, entry.size, entry.media_type,
            self.registry, self.repo, self.pool, self.store,
        )  # fmt: skip

    def push(self, entry: CacheEntry, layer: Layer) -> None:
        """Add ``entry`` on a background thread (``close`` waits for it)."""
        if not self.push_enabled:
            return
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(_PUSH_THREADS, "kiln-cache-push")
            self._pushes.append(self._executor.submit(self._push, entry, layer))

    def close(self) -> None:
        """Wait for every push (their failures were warnings already)."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _push(self, entry: CacheEntry, layer: Layer) -> None:
        where = f"{self.registry}/{self.repo}:{entry.key.partition(':')[2]}"
        try:
            client = self.pool.client(self.registry, push=True)
            client.upload_blob(self.repo, layer.digest, layer.size, layer.open_compressed)
            config = json.dumps(_config_of(entry), sort_keys=True).encode()
            config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
            client.upload_blob(self.repo, config_digest, len(config), lambda: io.BytesIO(config))
            manifest = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [
                    {"mediaType": entry.media_type, "digest": entry.digest, "size": entry.size}
                ],
            }
            data = json.dumps(manifest, sort_keys=True).encode()
            client.put_manifest(self.repo, entry.key.partition(":")[2], data, OCI_MANIFEST)
            log.debug("Cached layer %s as %s", entry.digest, where)
        except Exception as exc:  # the cache never fails the build
            log.warning("Layer %s was not cached in %s: %s", entry.digest, where, exc)

    def _warn_read(self, exc: Exception) -> None:
        with self._lock:
            first, self._warned_read = not self._warned_read, True
        if first:
            log.warning(
                "The layer cache in %s/%s cannot be read: %s", self.registry, self.repo, exc
            )


def _config_of(entry: CacheEntry) -> dict[str, Any]:
    """A small valid image config holding the entry's layer and its cache facts."""
    return {
        "architecture": "unknown",
        "os": "unknown",
        "rootfs": {"type": "layers", "diff_ids": [entry.diff_id]},
        "history": [dict(entry.history)],
        "config": dict(entry.config),
        _FACTS: {"key": entry.key, "inputs": dict(entry.inputs), "created": entry.created},
    }


def _entry_from_config(config: dict[str, Any], manifest: dict[str, Any]) -> CacheEntry:
    facts = config[_FACTS]
    layer = manifest["layers"][0]
    return CacheEntry(
        key=str(facts["key"]),
        digest=str(layer["digest"]),
        diff_id=str(config["rootfs"]["diff_ids"][0]),
        size=int(layer["size"]),
        media_type=str(layer["mediaType"]),
        history=dict(config["history"][0]),
        config=dict(config.get("config") or {}),
        created=float(facts["created"]),
        inputs={str(k): str(v) for k, v in dict(facts["inputs"]).items()},
    )
