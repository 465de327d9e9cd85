"""The error tree every part of kiln raises.

Why a single leaf module: the CLI maps these classes to exit codes and renders them in one place,
and every layer can raise them without importing anything else from kiln. Each error carries
what failed, where, and (when we know one) a hint about what to do.
"""

from __future__ import annotations


class KilnError(Exception):
    """Base of every error a user can act on.

    ``hint`` is an optional sentence telling the user what to do next. ``exit_code`` is the
    process exit status the CLI uses for this kind of failure.
    """

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\nhint: {self.hint}"
        return self.message


class UsageError(KilnError):
    """The command line or API call itself is wrong (bad flag combination, missing argument)."""

    exit_code = 2


class DockerfileError(KilnError):
    """A Dockerfile cannot be parsed or an instruction is invalid.

    The rendered message always starts with ``FILE:LINE:`` so editors can jump to it.
    """

    def __init__(self, message: str, *, file: str, line: int, hint: str | None = None) -> None:
        self.file = file
        self.line = line
        self.problem = message
        super().__init__(f"{file}:{line}: {message}", hint=hint)


class ContextError(KilnError):
    """The build context is missing, unreadable, or a COPY/ADD source does not exist in it."""


class UnsafePathError(KilnError):
    """A path (from a layer tar, a symlink, a COPY destination) would escape its root."""


class LayerError(KilnError):
    """A layer blob is malformed: bad tar, unsupported entry, digest mismatch."""


class RegistryError(KilnError):
    """A registry request failed after retries.

    ``reference`` is the image reference or repository involved, ``status`` the last HTTP status
    (None for connection errors), ``code`` the distribution-spec error code when the registry
    sent one (``MANIFEST_UNKNOWN``, ``UNAUTHORIZED``, ...). ``problem`` is the message as given,
    without the reference and status, for wrapping it in another error without repeating them.
    """

    def __init__(
        self,
        message: str,
        *,
        reference: str,
        status: int | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.reference = reference
        self.status = status
        self.code = code
        self.problem = message
        detail = f"{reference}: {message}"
        if status is not None:
            detail += f" (HTTP {status}{', ' + code if code else ''})"
        super().__init__(detail, hint=hint)


class AuthError(RegistryError):
    """Credentials were missing or rejected by a registry."""


class DigestMismatchError(KilnError):
    """Content read from a registry or disk does not hash to the digest that named it."""


class SandboxError(KilnError):
    """The sandbox for RUN could not be set up (missing privileges, mount failure)."""


class RunFailedError(KilnError):
    """A RUN step exited non-zero. ``status`` is its exit status (128+N for signal N)."""

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        self.status = status
        super().__init__(message, hint=hint)


class BuildError(KilnError):
    """A build step failed for a reason that is not one of the more specific errors above."""
