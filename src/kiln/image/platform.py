"""Platforms (os/architecture/variant) and the rules for matching them against an index.

Why a module: choosing the right manifest from a multi-platform index is a small, subtle
algorithm (architecture aliases, default variants, older-variant compatibility) that containerd
and Docker agree on. Keeping it pure and tabled here makes it testable without a registry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kiln.errors import ImageFormatError, UsageError

_ARCH_ALIASES: Mapping[str, tuple[str, str | None]] = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "aarch64": ("arm64", None),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
}

# The variant an image without one is assumed to have (containerd's normalisation).
_DEFAULT_VARIANT: Mapping[str, str] = {"arm64": "v8", "arm": "v7", "amd64": "v1"}

# Variants a host of the given (architecture, variant) can also run, best first.
_COMPATIBLE: Mapping[tuple[str, str], tuple[str, ...]] = {
    ("arm", "v8"): ("v7", "v6", "v5"),
    ("arm", "v7"): ("v6", "v5"),
    ("arm", "v6"): ("v5",),
    ("amd64", "v4"): ("v3", "v2", "v1"),
    ("amd64", "v3"): ("v2", "v1"),
    ("amd64", "v2"): ("v1",),
}


@dataclass(frozen=True)
class Platform:
    """An image platform as written in an index descriptor or an image config."""

    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None
    os_features: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Parse ``os/arch[/variant]`` as given to ``--platform`` (``linux/arm64/v8``).

        The one parser for platforms users write (flags, API arguments, ``FROM --platform``);
        what it refuses is a ``UsageError`` naming the text.
        """
        parts = text.strip().split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Platform:
        """Read the OCI ``platform`` object (``os.version`` and ``os.features`` included)."""
        try:
            os_name, arch = data["os"], data["architecture"]
        except (KeyError, TypeError) as exc:
            raise ImageFormatError(f"platform needs os and architecture: {data!r}") from exc
        if not isinstance(os_name, str) or not isinstance(arch, str):
            raise ImageFormatError(f"platform os and architecture must be strings: {data!r}")
        features = data.get("os.features") or ()
        return cls(
            os=os_name,
            architecture=arch,
            variant=data.get("variant") or None,
            os_version=data.get("os.version") or None,
            os_features=tuple(str(f) for f in features),
        )

    def to_dict(self) -> dict[str, Any]:
        """The OCI ``platform`` object, omitting empty optional fields."""
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            out["os.version"] = self.os_version
        if self.os_features:
            out["os.features"] = list(self.os_features)
        if self.variant:
            out["variant"] = self.variant
        return out

    def normalized(self) -> Platform:
        """Lower-case os, canonical architecture, and the default variant made explicit."""
        arch = self.architecture.lower()
        variant = self.variant.lower() if self.variant else None
        if arch in _ARCH_ALIASES:
            arch, implied = _ARCH_ALIASES[arch]
            variant = variant or implied
        if arch == "arm64" and variant == "8":
            variant = "v8"
        variant = variant or _DEFAULT_VARIANT.get(arch)
        return Platform(self.os.lower(), arch, variant, self.os_version, self.os_features)

    def matches(self, other: Platform) -> bool:
        """True when both name the same platform after normalisation (os.version ignored)."""
        a, b = self.normalized(), other.normalized()
        return (a.os, a.architecture, a.variant) == (b.os, b.architecture, b.variant)

    def can_run(self, image: Platform) -> bool:
        """True when a host of this platform runs ``image`` (same, or an older variant)."""
        host, img = self.normalized(), image.normalized()
        if (host.os, host.architecture) != (img.os, img.architecture):
            return False
        if host.variant == img.variant:
            return True
        older = _COMPATIBLE.get((host.architecture, host.variant or ""), ())
        return img.variant in older

    def __str__(self) -> str:
        base = f"{self.os}/{self.architecture}"
        return f"{base}/{self.variant}" if self.variant else base


#: What kiln builds for and pulls when no platform is asked for (as Kaniko and Docker on amd64).
DEFAULT_PLATFORM = Platform("linux", "amd64")


def compatibility_rank(host: Platform, image: Platform) -> int | None:
    """0 for an exact match, n for the n-th older compatible variant, None if not runnable."""
    if host.matches(image):
        return 0
    if not host.can_run(image):
        return None
    h, i = host.normalized(), image.normalized()
    older = _COMPATIBLE.get((h.architecture, h.variant or ""), ())
    return older.index(i.variant or "") + 1
