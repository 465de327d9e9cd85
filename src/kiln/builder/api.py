"""The programmatic entry point: `kiln.build(...)` / `kiln.build_image(...)`.

Why keyword arguments instead of asking callers for BuildOptions: programs should read like the
command line (`destinations=[...]`, `build_args={...}`), and registry knobs are flattened so a
caller never has to know that they live in a nested value.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from kiln.builder.builder import BuildResult, build
from kiln.builder.cache_setup import parse_cache_ttl
from kiln.builder.cache_specs import options_from_cache_specs
from kiln.builder.options import (
    BuildOptions,
    RegistryOptions,
    parse_platform,
    parse_references,
)
from kiln.errors import UsageError
from kiln.registry import Reference

_REGISTRY_FIELDS = {f.name for f in fields(RegistryOptions)}
_BUILD_FIELDS = {f.name for f in fields(BuildOptions)}
_PATH_FIELDS = {
    "tar_path",
    "oci_layout_path",
    "digest_file",
    "cache_dir",
    "cache_report",
    "work_dir",
    "kiln_dir",
    "image_name_with_digest_file",
    "image_name_tag_with_digest_file",
}


def build_image(
    context: str | Path = ".",
    *,
    dockerfile: str | Path | None = None,
    destinations: Iterable[str | Reference] = (),
    build_args: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
    cache_from: str | Iterable[str] | None = (),
    cache_to: str | Iterable[str] | None = (),
    **options: Any,
) -> BuildResult:
    """Build an image from a Dockerfile and a context; push and/or save it as asked.

    Any other BuildOptions or RegistryOptions field may be passed by name, e.g.
    ``no_push=True, tar_path="out/app.tar", insecure_registries=("127.0.0.1:5000",)``.
    Destinations and ``platform`` may be given as text (``"reg/app:1"``, ``"linux/arm64"``):
    they are parsed here, once, and a malformed one is a ``UsageError`` naming it.
    ``cache_from``/``cache_to`` take buildx's cache specs as ``--cache-from``/``--cache-to`` do
    (``"type=registry,ref=reg/app/cache"``, ``"type=local,dest=/var/cache/kiln"``) and set
    ``cache_repo``, ``cache_dir``, ``push_cache`` and ``write_local_cache`` from them.
    """
    registry_kwargs = {k: v for k, v in options.items() if k in _REGISTRY_FIELDS}
    build_kwargs = {k: v for k, v in options.items() if k in _BUILD_FIELDS}
    unknown = set(options) - set(registry_kwargs) - set(build_kwargs)
    if unknown:
        raise _unknown_options(sorted(unknown))
    for key in _PATH_FIELDS & set(build_kwargs):
        if build_kwargs[key] is not None:
            build_kwargs[key] = Path(build_kwargs[key])
    if "platform" in build_kwargs:
        build_kwargs["platform"] = parse_platform(build_kwargs["platform"])
    if build_kwargs.get("cache_repo") is not None:
        build_kwargs["cache_repo"] = parse_references([build_kwargs["cache_repo"]])[0]
    if isinstance(build_kwargs.get("cache_ttl"), str):  # a Go duration, as on the command line
        build_kwargs["cache_ttl"] = parse_cache_ttl(build_kwargs["cache_ttl"])
    if "no_cache_stages" in build_kwargs:
        build_kwargs["no_cache_stages"] = tuple(build_kwargs["no_cache_stages"])
    build_kwargs.update(
        options_from_cache_specs(
            _texts(cache_from, "cache_from"), _texts(cache_to, "cache_to"), build_kwargs
        )
    )
    if "ignore_paths" in build_kwargs:
        build_kwargs["ignore_paths"] = tuple(build_kwargs["ignore_paths"])
    for key in ("insecure_registries", "skip_tls_verify_registries", "registry_mirrors"):
        if key in registry_kwargs:
            registry_kwargs[key] = tuple(registry_kwargs[key])
    return build(
        BuildOptions(
            context=str(context),
            dockerfile=str(dockerfile) if dockerfile is not None else None,
            destinations=parse_references(_strings(destinations, "destinations")),
            build_args=_string_mapping(
                build_args, "build_args", "{'VERSION': '1.2', 'PROXY': None}"
            ),
            labels=_string_mapping(labels, "labels", "{'team': 'builders'}"),
            registry=RegistryOptions(**registry_kwargs),
            **build_kwargs,
        )
    )


def _string_mapping(value: object, name: str, example: str) -> dict[str, Any]:
    """``value`` as a dict of str to str (``build_args`` also to None: take the environment's
    value), or a UsageError saying what was expected; a list of "K=V" strings is not guessed at."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise UsageError(
            f"{name} must be a mapping of names to values, not {type(value).__name__}",
            hint=f"pass e.g. {name}={example}",
        )
    allowed: tuple[type, ...] = (str, type(None)) if name == "build_args" else (str,)
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, allowed):
            wanted = "a string or None" if name == "build_args" else "a string"
            raise UsageError(
                f"{name}[{key!r}] = {item!r}: each name must be a string and each value {wanted}",
                hint=f"pass e.g. {name}={example}",
            )
    return dict(value)


def _strings(value: object, name: str) -> list[str | Reference]:
    """``value`` as a list of references or texts; a lone string is one reference, not a
    sequence of one-letter names (``destinations="reg/app:1"`` means what it says)."""
    if isinstance(value, str | Reference):
        return [value]
    if not isinstance(value, Iterable):
        raise UsageError(f"{name} must be a list of image references, not {type(value).__name__}")
    return list(value)


def _texts(value: object, name: str) -> list[str]:
    """Cache specs: one string, or a list of them (a lone string is not split into letters);
    None is none."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    items: list[object] = list(value) if isinstance(value, Iterable) else [value]
    texts = [item for item in items if isinstance(item, str)]
    if len(texts) != len(items):
        wrong = next(item for item in items if not isinstance(item, str))
        raise UsageError(
            f"{name} must be a cache spec or a list of them, not {type(wrong).__name__}",
            hint=f'pass e.g. {name}="type=registry,ref=reg.example/app/cache"',
        )
    return texts


def _unknown_options(names: list[str]) -> UsageError:
    """Name the keyword arguments kiln does not know, with the closest known ones."""
    known = sorted(
        _BUILD_FIELDS | _REGISTRY_FIELDS | {"dockerfile", "destinations", "cache_from", "cache_to"}
    )
    close = {n: difflib.get_close_matches(n, known, n=1) for n in names}
    guesses = [f"{n} -> {match[0]}" for n, match in close.items() if match]
    return UsageError(
        f"unknown build option(s): {', '.join(names)}",
        hint=f"did you mean: {'; '.join(guesses)}" if guesses else None,
    )
