"""Registry flags (TLS, plain HTTP, mirrors, retries, push extras), shared by several commands.

Why a module of its own: `kiln build`, `kiln warm` and `kiln push` reach registries the same way,
so they accept the same Kaniko-compatible spellings, parsed once into ``RegistryOptions``. The
help texts here are the documentation a user sees.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kiln.builder.options import RegistryOptions
from kiln.cli.flags import BooleanFlag
from kiln.errors import UsageError


def add_tls_flags(g: argparse._ArgumentGroup) -> None:
    """Plain HTTP, TLS verification, CA files and client certificates."""
    g.add_argument("--insecure", action=BooleanFlag, help="push over plain HTTP")
    g.add_argument("--insecure-pull", action=BooleanFlag, help="pull over plain HTTP")
    g.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="use plain HTTP for this registry, pulls and pushes (repeatable); other registries "
        "must speak HTTPS",
    )
    g.add_argument(
        "--skip-tls-verify", action=BooleanFlag, help="do not verify TLS certificates on push"
    )
    g.add_argument(
        "--skip-tls-verify-pull",
        action=BooleanFlag,
        help="do not verify TLS certificates on pull",
    )
    g.add_argument(
        "--skip-tls-verify-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="do not verify TLS certificates for this registry (repeatable)",
    )
    g.add_argument(
        "--registry-certificate",
        action="append",
        default=[],
        metavar="HOST[:PORT]=CA.crt",
        help="verify this registry's TLS certificate against this CA file instead of the "
        "system store (repeatable)",
    )
    g.add_argument(
        "--registry-client-cert",
        action="append",
        default=[],
        metavar="HOST[:PORT]=CERT,KEY",
        help="present this client certificate and key (PEM files) to this registry: mutual "
        "TLS (repeatable)",
    )


def add_registry_flags(g: argparse._ArgumentGroup) -> None:
    """Everything about reaching registries (TLS, mirrors, retries)."""
    add_tls_flags(g)
    g.add_argument(
        "--registry-mirror",
        action="append",
        default=[],
        metavar="HOST[:PORT][/PREFIX]",
        help="pull Docker Hub images from this mirror first (repeatable, tried in order); "
        "Docker Hub itself is the fallback",
    )
    g.add_argument(
        "--registry-map",
        action="append",
        default=[],
        metavar="ORIG=MIRROR[;MIRROR2]",
        help="pull images of registry ORIG from these mirrors first (any registry; mirrors may "
        "have a path prefix; repeatable)",
    )
    g.add_argument(
        "--skip-default-registry-fallback",
        action=BooleanFlag,
        help="when mirrors are configured, fail instead of pulling from the original registry",
    )
    g.add_argument(
        "--push-retry", type=int, default=3, metavar="N", help="retries for each push request"
    )
    g.add_argument(
        "--image-download-retry",
        type=int,
        default=3,
        metavar="N",
        help="retries for each pull request",
    )


def add_push_extras(g: argparse._ArgumentGroup) -> None:
    """Kaniko's push-related flags of `kiln build`."""
    g.add_argument(
        "--push-ignore-immutable-tag-errors",
        action=BooleanFlag,
        help="treat a registry's refusal to overwrite an immutable tag as success",
    )
    g.add_argument(
        "--skip-push-permission-check",
        action=BooleanFlag,
        help="do not check push access to every destination before building",
    )
    g.add_argument(
        "--image-name-with-digest-file",
        type=Path,
        metavar="FILE",
        help="write REGISTRY/REPO@DIGEST of each pushed destination here, one per line",
    )
    g.add_argument(
        "--image-name-tag-with-digest-file",
        type=Path,
        metavar="FILE",
        help="write REGISTRY/REPO:TAG@DIGEST of each pushed destination here, one per line",
    )
    g.add_argument(
        "--compression",
        choices=("gzip", "zstd"),
        default="gzip",
        help="layer compression; zstd needs --image-format oci",
    )
    g.add_argument(
        "--compression-level",
        type=int,
        metavar="N",
        help=(
            "compression level (gzip 1-9, zstd 1-19; default: the compressor's own); "
            "data that does not compress (random, already compressed) is stored at any level"
        ),
    )


def _keyed(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep or not value:
            raise UsageError(f"{flag} {item!r}: expected HOST=VALUE")
        out[key] = value
    return out


def _client_certs(items: list[str]) -> dict[str, tuple[Path, Path]]:
    out: dict[str, tuple[Path, Path]] = {}
    for host, value in _keyed(items, "--registry-client-cert").items():
        cert, sep, key = value.partition(",")
        if not sep or not cert or not key:
            raise UsageError(
                f"--registry-client-cert {host}={value}: expected HOST=CERT_FILE,KEY_FILE"
            )
        out[host] = (Path(cert), Path(key))
    return out


def registry_options_from_args(args: argparse.Namespace) -> RegistryOptions:
    """``RegistryOptions`` from the flags above (those a command did not define keep defaults)."""

    def get(name: str, default: Any) -> Any:
        return getattr(args, name, default)

    mapped = _keyed(list(get("registry_map", [])), "--registry-map")
    maps = {host: tuple(m for m in value.split(";") if m) for host, value in mapped.items()}
    certs = _keyed(list(get("registry_certificate", [])), "--registry-certificate")
    return RegistryOptions(
        insecure_push=bool(get("insecure", False)),
        insecure_pull=bool(get("insecure_pull", False)),
        insecure_registries=tuple(get("insecure_registry", [])),
        skip_tls_verify_push=bool(get("skip_tls_verify", False)),
        skip_tls_verify_pull=bool(get("skip_tls_verify_pull", False)),
        skip_tls_verify_registries=tuple(get("skip_tls_verify_registry", [])),
        push_retry=int(get("push_retry", 3)),
        pull_retry=int(get("image_download_retry", 3)),
        registry_certificates={host: Path(path) for host, path in certs.items()},
        registry_client_certs=_client_certs(list(get("registry_client_cert", []))),
        registry_mirrors=tuple(get("registry_mirror", [])),
        registry_maps=maps,
        skip_default_registry_fallback=bool(get("skip_default_registry_fallback", False)),
        push_ignore_immutable_tag_errors=bool(get("push_ignore_immutable_tag_errors", False)),
        skip_push_permission_check=bool(get("skip_push_permission_check", False)),
    )
