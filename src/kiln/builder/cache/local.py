"""The local layer cache: one JSON entry per step key, the layer blob in kiln's blob store.

Why files and renames: several builds may share one ``--cache-dir`` at once (CI runners, the
pods of one node). Every write is a whole file written beside its name and renamed over it, so
a reader sees an old entry or a new one, never half of one; two builds writing the same key
write the same facts, so whichever rename lands last is right. A layer blob is named by its
digest and verified before it is used (``StepReplay``), so a damaged blob is a miss, not a
wrong image.

Layout under the cache dir: ``layer-cache/entries/<key hex>.json`` (the step's result) and
``layer-cache/index/<position hex>.json`` (the inputs last recorded for one step position of
one Dockerfile, which a miss is compared with to say what changed).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiln.image.atomic import atomic_write_bytes

log = logging.getLogger("kiln")


@dataclass(frozen=True)
class CacheEntry:
    """What a step made: its layer, the history entry and config it recorded, and why.

    ``config`` is the image config after the step (what continuing from it needs where the
    step's own dispatch is not run, e.g. a registry entry read by another tool); ``inputs``
    the key's named inputs, for explaining a later miss.
    """

    key: str
    digest: str
    diff_id: str
    size: int
    media_type: str
    history: Mapping[str, Any]
    config: Mapping[str, Any]
    created: float
    inputs: Mapping[str, str]

    def to_json(self) -> bytes:
        """The entry as stored."""
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> CacheEntry:
        """An entry as stored; ValueError/KeyError/TypeError when it is not one."""
        raw = json.loads(data)
        return cls(
            key=str(raw["key"]),
            digest=str(raw["digest"]),
            diff_id=str(raw["diff_id"]),
            size=int(raw["size"]),
            media_type=str(raw["media_type"]),
            history=dict(raw["history"]),
            config=dict(raw["config"]),
            created=float(raw["created"]),
            inputs={str(k): str(v) for k, v in dict(raw["inputs"]).items()},
        )


class LocalCache:
    """Entries and the step-position index under ``<cache dir>/layer-cache``."""

    def __init__(self, cache_dir: Path) -> None:
        self.root = cache_dir / "layer-cache"
        self._entries = self.root / "entries"
        self._index = self.root / "index"

    def find(self, key_hex: str) -> CacheEntry | None:
        """The entry for a key, or None (missing or unreadable)."""
        return self._read(self._entries / f"{key_hex}.json")

    def store(self, entry: CacheEntry) -> None:
        """Record ``entry`` under its key (replacing an older one for the same key)."""
        self._entries.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._entries / f"{entry.key.partition(':')[2]}.json", entry.to_json())

    def forget(self, key_hex: str) -> None:
        """Drop an entry found to be unusable (its blob gone or damaged)."""
        (self._entries / f"{key_hex}.json").unlink(missing_ok=True)

    def last_inputs(self, position: str) -> Mapping[str, str] | None:
        """The inputs last recorded at ``position`` (see ``position_of``), if any."""
        try:
            raw = json.loads((self._index / f"{_hex(position)}.json").read_bytes())
            return {str(k): str(v) for k, v in dict(raw["inputs"]).items()}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def remember(self, position: str, inputs: Mapping[str, str]) -> None:
        """Record ``inputs`` as the last seen at ``position``."""
        self._index.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"position": position, "inputs": dict(inputs)}, sort_keys=True)
        atomic_write_bytes(self._index / f"{_hex(position)}.json", data.encode())

    def _read(self, path: Path) -> CacheEntry | None:
        try:
            return CacheEntry.from_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("Ignoring the unreadable cache entry %s: %s", path, exc)
            return None


def position_of(dockerfile: str, stage: str, step: int) -> str:
    """One step's place: the Dockerfile's path, the stage (name or index) and step number."""
    return f"{dockerfile}\0{stage}\0{step}"


def _hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
