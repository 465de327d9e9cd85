"""Cache keys: sha256 of a canonical JSON of named inputs, the inputs kept beside the key.

Why named inputs and not one running hash: a miss must be explained ("build arg VERSION
changed"), which needs each input's own digest to compare with the last build's. The key is
the digest of the sorted (name, digest) pairs, so the same inputs give the same key anywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiln.builder.dispatch import PROXY_ARGS
from kiln.builder.effects import CopyEffect, Effect, RunEffect, WorkdirEffect
from kiln.builder.state import StageState


def digest_of(value: object) -> str:
    """``sha256:<hex>`` of ``value`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheKey:
    """A step's key (``sha256:<hex>``) and the named inputs it was made from."""

    digest: str
    inputs: Mapping[str, str]

    @property
    def hex(self) -> str:
        """The key without its algorithm: a file name, or a registry tag."""
        return self.digest.partition(":")[2]


def make_key(inputs: Mapping[str, str]) -> CacheKey:
    """The key of ``inputs`` (name -> digest)."""
    frozen = dict(sorted(inputs.items()))
    return CacheKey(digest_of(frozen), frozen)


def base_digest(diff_ids: Iterable[str], platform: str) -> str:
    """What a stage's first step stands on: its base's layers (by diff ID) and the platform."""
    return digest_of({"diff_ids": list(diff_ids), "platform": platform})


def step_inputs(
    parent: str, state: StageState, effect: Effect, layer_options: Mapping[str, object]
) -> dict[str, str]:
    """The inputs every filesystem step has: the parent, the instruction after expansion, the
    config it sees (environment and build args by name, user, workdir, shell) and the options
    that change layer bytes. COPY/ADD add their sources (``copy_source_inputs``)."""
    inputs = {
        "parent": parent,
        "instruction": digest_of(_instruction(effect)),
        "user": digest_of(state.config.user or ""),
        "workdir": digest_of(state.config.working_dir or "/"),
        "shell": digest_of(list(state.shell)),
        "layer-options": digest_of(dict(layer_options)),
    }
    if isinstance(effect, RunEffect):  # only RUN sees the environment (COPY expands it: above)
        for entry in effect.env:
            name, _, value = entry.partition("=")
            if name not in PROXY_ARGS:  # Docker leaves proxy settings out of the cache
                kind = "arg" if name in state.args and name not in state.env_map() else "env"
                inputs[f"{kind}:{name}"] = digest_of(value)
    return inputs


def _instruction(effect: Effect) -> dict[str, object]:
    """The expanded instruction as it acts (not its line number, which moves with edits)."""
    match effect:
        case RunEffect():
            return {"run": list(effect.argv), "files": [list(f) for f in effect.files]}
        case WorkdirEffect():
            return {"workdir": effect.path, "user": effect.user}
        case CopyEffect():
            return {
                "add" if effect.is_add else "copy": list(effect.sources),
                "dest": effect.dest,
                "workdir": effect.workdir,
                "chown": effect.chown,
                "chmod": effect.chmod,
                "from": effect.from_,
                "heredocs": [list(h) for h in effect.heredocs],
                "parents": effect.parents,
                "exclude": list(effect.exclude),
                "checksum": effect.checksum,
                "unpack": effect.unpack,
            }
