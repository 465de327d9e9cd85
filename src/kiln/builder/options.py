"""What a build is asked to do: one frozen value shared by the CLI and the Python API.

Why a single options object: Kaniko's flags and `docker build`'s flags describe the same build;
both CLI spellings and `kiln.build(...)` fill this one value, so the builder never needs to know
which spelling the user chose. It holds parsed values (``Reference``, ``Platform``): the CLI and
the API parse what users typed once, with ``parse_references`` and ``parse_platform``, and a
malformed value fails there, before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kiln.image import Platform
from kiln.image.platform import DEFAULT_PLATFORM
from kiln.registry import Reference


@dataclass(frozen=True)
class RegistryOptions:
    """How to reach registries: plain HTTP, TLS verification, credentials location, retries."""

    insecure_push: bool = False
    insecure_pull: bool = False
    insecure_registries: tuple[str, ...] = ()
    skip_tls_verify_push: bool = False
    skip_tls_verify_pull: bool = False
    skip_tls_verify_registries: tuple[str, ...] = ()
    docker_config_dir: Path | None = None
    push_retry: int = 3
    pull_retry: int = 3
    registry_certificates: Mapping[str, Path] = field(default_factory=dict)
    registry_client_certs: Mapping[str, tuple[Path, Path]] = field(default_factory=dict)
    registry_mirrors: tuple[str, ...] = ()
    registry_maps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    skip_default_registry_fallback: bool = False
    push_ignore_immutable_tag_errors: bool = False
    skip_push_permission_check: bool = False

    def is_insecure(self, registry: str, *, push: bool) -> bool:
        """Plain HTTP only for registries the user named, or for all with --insecure(-pull)."""
        if registry in self.insecure_registries:
            return True
        return self.insecure_push if push else self.insecure_pull

    def skips_tls_verify(self, registry: str, *, push: bool) -> bool:
        """TLS is verified unless the user turned verification off for this registry."""
        if registry in self.skip_tls_verify_registries:
            return True
        return self.skip_tls_verify_push if push else self.skip_tls_verify_pull


@dataclass(frozen=True)
class BuildOptions:
    """Everything one build needs; defaults match `docker build` where Kaniko and Docker agree."""

    context: str = "."
    dockerfile: str | None = None  # "-": read it from standard input
    context_sub_path: str | None = None
    git: tuple[str, ...] = ()  # `--git KEY=VALUE,...` items (see kiln.context.GitOptions)
    destinations: tuple[Reference, ...] = ()
    build_args: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    target: str | None = None
    no_push: bool = False
    tar_path: Path | None = None
    oci_layout_path: Path | None = None
    digest_file: Path | None = None
    image_name_with_digest_file: Path | None = None
    image_name_tag_with_digest_file: Path | None = None
    image_format: str = "docker"
    compression: str = "gzip"
    compression_level: int | None = None
    platform: Platform = DEFAULT_PLATFORM
    isolation: str = "auto"
    snapshotter: str = "auto"  # "overlay", "walk" or "auto" (overlay where mounts work)
    jobs: int | None = None  # stages built at once; None: the CPU count
    cache_dir: Path | None = None  # blobs, unpacked layers and (unless no_cache) the layer cache
    cache: bool = False  # share step layers through a registry (cache_repo, or <destination>/cache)
    cache_repo: Reference | None = None
    cache_ttl: float | None = None  # seconds; older cache entries are misses
    push_cache: bool = True  # False: look the registry cache up, never add to it
    write_local_cache: bool = True  # False: look entries up in cache_dir, never add to them
    cache_run_layers: bool = True
    cache_copy_layers: bool = True
    no_cache: bool = False  # `docker build --no-cache`: run every step, cache nothing
    no_cache_stages: tuple[str, ...] = ()  # stages run without looking the cache up
    cache_report: Path | None = None  # a JSON line per step: key, inputs, hit or why not
    work_dir: Path | None = None
    registry: RegistryOptions = field(default_factory=RegistryOptions)
    reproducible: bool = False
    source_date_epoch: int | None = None
    # The inplace isolation (kiln's own files live in kiln_dir; see kiln.builder.inplace_root).
    kiln_dir: Path = Path("/kiln")  # never snapshotted, overwritten or deleted; the work dir
    ignore_paths: tuple[str, ...] = ()  # also never snapshotted or deleted (--ignore-path)
    ignore_var_run: bool = True  # keep /var/run out of resets and snapshots, as Kaniko does
    force: bool = False  # allow inplace outside a container
    cleanup: bool = False  # put the container's filesystem back at the end


def parse_references(given: Iterable[str | Reference]) -> tuple[Reference, ...]:
    """Image references (destinations, images to warm); text is parsed, and a malformed one
    is a ``UsageError`` naming it."""
    return tuple(d if isinstance(d, Reference) else Reference.parse(str(d)) for d in given)


def parse_platform(given: str | Platform) -> Platform:
    """The platform as a value; ``os/arch[/variant]`` text is parsed."""
    return given if isinstance(given, Platform) else Platform.parse(str(given))
