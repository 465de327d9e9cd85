"""Image references (``[registry/]repository[:tag][@digest]``) with Docker's normalisation.

Why: every user-facing image name goes through one parser so that ``busybox``,
``docker.io/library/busybox:latest`` and ``index.docker.io/busybox`` all mean the same thing,
and malformed names fail early with a message that says which part is wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kiln.errors import UsageError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
DEFAULT_TAG = "latest"

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"^(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$"
)
_PATH_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$")
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_MAX_NAME = 255


def registry_api_host(registry: str) -> str:
    """The host that serves the distribution API for ``registry`` (Docker Hub's is special)."""
    return DOCKER_HUB_API if registry in _HUB_ALIASES else registry


def normalize_registry(registry: str) -> str:
    """Map Docker Hub's aliases to ``docker.io``; leave every other registry unchanged."""
    return DOCKER_HUB if registry in _HUB_ALIASES else registry


def validate_digest(digest: str, *, text: str | None = None) -> str:
    """Return ``digest`` if it is well formed (sha256 must be 64 lower-case hex), else raise."""
    if not _DIGEST.match(digest) or (digest.startswith("sha256:") and not _SHA256.match(digest)):
        raise UsageError(
            f"invalid digest {digest!r}" + (f" in image reference {text!r}" if text else ""),
            hint="a digest looks like sha256: followed by 64 lower-case hex digits",
        )
    return digest


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        # An upper-case first component can only be a host name (repositories are lower-case).
        return first, rest
    return DOCKER_HUB, name


@dataclass(frozen=True)
class Reference:
    """A parsed, normalised image reference.

    ``registry`` is the registry name as users write it (``docker.io`` for Docker Hub),
    ``repository`` the path inside it, ``tag`` (None only when a digest was given without a
    tag) and ``digest``.
    """

    registry: str
    repository: str
    tag: str | None = DEFAULT_TAG
    digest: str | None = None

    @classmethod
    def parse(cls, text: str) -> Reference:
        """Parse ``text`` with Docker's rules; raise ``UsageError`` saying what is wrong."""
        if not text or text != text.strip():
            raise UsageError(f"invalid image reference {text!r}: empty or surrounded by spaces")
        remainder, _, digest = text.partition("@")
        if "@" in text:
            validate_digest(digest, text=text)
        tag: str | None = None
        colon = remainder.rfind(":")
        if colon > remainder.rfind("/"):
            remainder, tag = remainder[:colon], remainder[colon + 1 :]
            if not _TAG.match(tag):
                raise UsageError(
                    f"invalid tag {tag!r} in image reference {text!r}",
                    hint="tags are up to 128 letters, digits, '_', '.' and '-', not starting "
                    "with '.' or '-'",
                )
        domain, path = _split_domain(remainder)
        cls._check_domain(domain, text)
        cls._check_path(path, text)
        registry = normalize_registry(domain)
        if registry == DOCKER_HUB and "/" not in path:
            path = f"library/{path}"
        if tag is None and not digest:
            tag = DEFAULT_TAG
        return cls(registry, path, tag, digest or None)

    @staticmethod
    def _check_domain(domain: str, text: str) -> None:
        if not _DOMAIN.match(domain):
            raise UsageError(f"invalid registry host {domain!r} in image reference {text!r}")

    @staticmethod
    def _check_path(path: str, text: str) -> None:
        if not path:
            raise UsageError(f"invalid image reference {text!r}: repository name is empty")
        if path != path.lower():
            raise UsageError(f"invalid image reference {text!r}: repository name must be lowercase")
        for component in path.split("/"):
            if not _PATH_COMPONENT.match(component):
                raise UsageError(
                    f"invalid repository name component {component!r} in image reference {text!r}",
                    hint="components are lower-case letters and digits, separated by '.', "
                    "'_', '__' or dashes",
                )
        if len(path) > _MAX_NAME:
            raise UsageError(f"invalid image reference {text!r}: repository name too long")

    @property
    def name(self) -> str:
        """``registry/repository`` (no tag, no digest)."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What the manifests endpoint is asked for: the digest if any, else the tag."""
        return self.digest or self.tag or DEFAULT_TAG

    @property
    def api_host(self) -> str:
        """The host serving the distribution API (``registry-1.docker.io`` for Docker Hub)."""
        return registry_api_host(self.registry)

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` and no digest."""
        return Reference.parse(f"{self.name}:{tag}")

    def with_digest(self, digest: str) -> Reference:
        """The same repository and tag pinned to ``digest``."""
        return Reference(self.registry, self.repository, self.tag, validate_digest(digest))

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text
