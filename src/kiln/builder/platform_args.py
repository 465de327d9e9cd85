"""Build args as Docker sees them: automatic platform args, bare `--build-arg NAME`.

Why: BuildKit defines these eight ARGs in the global scope of every build, so `FROM
--platform=$BUILDPLATFORM` works and a stage sees `$TARGETARCH` after a bare `ARG TARGETARCH`.
kiln builds for one target platform (``--platform``) on the host's platform. A build arg given
without a value (`--build-arg NAME`, or ``build_args={"NAME": None}``) takes NAME's value from
the environment, as the docker CLI does.
"""

from __future__ import annotations

import os
import platform as host
from collections.abc import Mapping

from kiln.image import Platform

# Python's machine names -> the GOARCH names image platforms use.
_ARCHES = {
    "x86_64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", None),
    "arm64": ("arm64", None),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


def host_platform() -> Platform:
    """The platform kiln runs on."""
    machine = host.machine().lower()
    arch, variant = _ARCHES.get(machine, (machine, None))
    return Platform("linux", arch, variant)


def platform_args(target: Platform, build: Platform | None = None) -> dict[str, str]:
    """The TARGET* and BUILD* args for a build of `target` on `build` (default: this host)."""
    out: dict[str, str] = {}
    for prefix, platform in (("TARGET", target), ("BUILD", build or host_platform())):
        out[f"{prefix}PLATFORM"] = str(platform)
        out[f"{prefix}OS"] = platform.os
        out[f"{prefix}ARCH"] = platform.architecture
        out[f"{prefix}VARIANT"] = platform.variant or ""
    return out


def resolve_build_args(
    given: Mapping[str, str | None], environ: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    """Fill valueless build args from the environment (still None when it lacks them)."""
    env = os.environ if environ is None else environ
    return {name: env.get(name) if value is None else value for name, value in given.items()}
