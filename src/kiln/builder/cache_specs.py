"""buildx's cache flags (`--cache-from`, `--cache-to`) mapped onto kiln's two caches.

Why a translation and not a second cache: buildx names a cache by where it lives
(``type=registry,ref=REG/REPO`` or ``type=local,src|dest=DIR``); kiln has exactly those two
places already, the registry cache repository (``cache_repo``) and the local cache in the cache
dir (``cache_dir``). So each spec becomes those fields, plus whether the build may add to them:
a place only named by ``--cache-from`` is looked up and never written, one named by
``--cache-to`` is written (and read). What kiln cannot honour is refused with a UsageError
naming the spec, never dropped: other types (gha, s3, azblob, inline), unknown keys,
``mode=min``, and two different places of one kind (kiln has one cache repository and one
cache dir per build).

``mode``: buildx's ``min`` exports only the final image's layers, ``max`` every stage's. kiln
caches every cacheable step of every stage it builds, which is ``mode=max``; that is also what
no ``mode`` means here (buildx's default would be ``min``), and ``mode=min`` is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiln.errors import UsageError
from kiln.registry import Reference

log = logging.getLogger("kiln")

_HINT = (
    "a cache spec is type=registry,ref=REGISTRY/REPO, or type=local with src=DIR to read "
    "from and dest=DIR to write to; a bare REGISTRY/REPO means type=registry"
)
#: The keys each type takes (besides ``type``) to read from (False) and to write to (True).
_KEYS = {
    ("registry", False): {"ref"},
    ("registry", True): {"ref", "mode"},
    ("local", False): {"src"},
    ("local", True): {"dest", "mode"},
}
#: How the Python API names the two lists (the CLI passes its flags).
API_LABELS = ("cache_from", "cache_to")


@dataclass(frozen=True)
class CacheSpec:
    """One `--cache-from`/`--cache-to` value: a registry repository or a local directory."""

    writes: bool  # False: only looked up (--cache-from); True: also added to (--cache-to)
    repository: Reference | None = None
    directory: Path | None = None


def parse_cache_spec(text: str, flag: str, *, writes: bool) -> CacheSpec:
    """One buildx cache spec (``flag`` is how the caller names it, for messages); a
    UsageError names what kiln cannot map."""
    if "=" not in text and "," not in text:  # buildx's shorthand: an image reference
        return CacheSpec(writes, repository=_repository(text, flag, text))
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value:
            raise UsageError(f"{flag} {text!r}: {item!r} is not KEY=VALUE", hint=_HINT)
        if key in fields:
            raise UsageError(f"{flag} {text!r}: {key} is given twice", hint=_HINT)
        fields[key] = value.strip()
    kind = fields.pop("type", "registry")
    if (kind, writes) not in _KEYS:
        raise UsageError(
            f"{flag} {text!r}: cache type {kind!r} is not supported by kiln (only registry "
            "and local: kiln keeps its layer cache in a registry repository or a directory)",
            hint=_HINT,
        )
    unknown = sorted(set(fields) - _KEYS[kind, writes])
    if unknown:
        allowed = ", ".join(sorted(_KEYS[kind, writes]))
        raise UsageError(
            f"{flag} {text!r}: kiln does not support {', '.join(unknown)} for type={kind} "
            f"(it takes {allowed})",
            hint=_HINT,
        )
    mode = fields.get("mode", "max")
    if mode != "max":
        raise UsageError(
            f"{flag} {text!r}: mode={mode} is not supported: kiln caches every step of every "
            "stage it builds, which is mode=max",
            hint="drop the mode, or write mode=max",
        )
    if kind == "registry":
        if "ref" not in fields:
            raise UsageError(f"{flag} {text!r}: type=registry needs ref=REGISTRY/REPO", hint=_HINT)
        return CacheSpec(writes, repository=_repository(fields["ref"], flag, text))
    where = "dest" if writes else "src"
    if where not in fields:
        raise UsageError(f"{flag} {text!r}: type=local needs {where}=DIR", hint=_HINT)
    return CacheSpec(writes, directory=Path(fields[where]))


def _repository(ref: str, flag: str, text: str) -> Reference:
    """The cache repository of ``ref``: kiln tags one entry per step key in it, so a tag the
    user gave (buildx's ``:buildcache``) names nothing there and is said to be unused."""
    if "@" in ref:
        raise UsageError(
            f"{flag} {text!r}: a cache is a repository, not a digest",
            hint="give ref=REGISTRY/REPO",
        )
    reference = Reference.parse(ref)
    if ":" in ref.rpartition("/")[2]:
        log.warning(
            "%s %s: kiln's registry cache is the repository %s/%s, one tag per step key; "
            "the tag :%s is not used",
            flag,
            text,
            reference.registry,
            reference.repository,
            reference.tag,
        )
    return reference


def options_from_cache_specs(
    cache_from: Iterable[str],
    cache_to: Iterable[str],
    given: dict[str, Any],
    labels: tuple[str, str] = API_LABELS,
) -> dict[str, Any]:
    """The ``BuildOptions`` fields the specs set, checked against those ``given`` already
    (``cache_repo``, ``cache_dir``, ``push_cache``): a second repository or directory, or a
    registry to write to with ``push_cache`` False, is a UsageError. No specs: no fields.
    ``labels`` name the two lists in messages."""
    specs = [parse_cache_spec(t, labels[0], writes=False) for t in cache_from]
    specs += [parse_cache_spec(t, labels[1], writes=True) for t in cache_to]
    out: dict[str, Any] = {}
    repos = [s for s in specs if s.repository is not None]
    if repos:
        repo = _one(
            [f"{s.repository.registry}/{s.repository.repository}" for s in specs if s.repository],
            _repo_name(given.get("cache_repo")),
            "registry cache repository",
        )
        writes = any(s.writes for s in repos)
        if writes and given.get("push_cache") is False:
            raise UsageError(
                f"{labels[1]} names a registry cache to add to, and pushes to the cache are "
                "turned off",
                hint="drop one of the two: a cache named only as a source is read, never added to",
            )
        out["cache_repo"] = Reference.parse(repo)
        out["push_cache"] = writes
    dirs = [s for s in specs if s.directory is not None]
    if dirs:
        given_dir = given.get("cache_dir")
        directory = _one(
            [str(s.directory) for s in dirs],
            str(given_dir) if given_dir is not None else None,
            "local cache directory",
        )
        out["cache_dir"] = Path(directory)
        out["write_local_cache"] = any(s.writes for s in dirs)
    return out


def _repo_name(reference: object) -> str | None:
    if isinstance(reference, Reference):
        return f"{reference.registry}/{reference.repository}"
    return None


def _one(named: list[str], given: str | None, what: str) -> str:
    """The one place all specs (and the option already given) name."""
    places = sorted(set(named) | ({given} if given is not None else set()))
    if len(places) > 1:
        raise UsageError(
            f"kiln has one {what} per build; the cache options name {', '.join(places)}",
            hint="name the same one in each",
        )
    return places[0]
