"""The error tree every part of kiln raises.

Why a single leaf module: the CLI maps these classes to exit codes and renders them in one place,
and every layer can raise them without importing anything else from kiln. Each error carries
what failed, where, and (when we know one) a hint about what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Self

_RULE = "-" * 20


class StepLocation:
    """The Dockerfile instruction a build step came from: file, first line, and its text.

    ``text`` is the instruction as written (continuation lines and heredoc bodies included).
    A plain class, not a dataclass: this module is imported by every kiln start.
    """

    __slots__ = ("file", "line", "text")

    def __init__(self, file: str, line: int, text: str) -> None:
        self.file = file
        self.line = line
        self.text = text

    def render(self) -> str:
        """BuildKit's shape: ``FILE:LINE`` above the instruction's lines, each marked ``>>>``."""
        lines = self.text.rstrip("\n").split("\n")
        width = len(str(self.line + len(lines) - 1))
        body = [f" {self.line + i:>{width}} | >>> {text}" for i, text in enumerate(lines)]
        return "\n".join([f"{self.file}:{self.line}", _RULE, *body, _RULE])


@dataclass(frozen=True)
class Remedy:
    """A build option that would fix an error: its ``BuildOptions``/``RegistryOptions`` field
    name and, when known, the value to give it (a list for fields holding several values).

    Why data and not text: the same error reaches people through two doors. The CLI spells a
    remedy as a flag (``--insecure-registry HOST``), the Python API as a keyword argument
    (``insecure_registries=['HOST']``); each edge renders it (see ``KilnError.render``).
    """

    option: str
    value: object = None  # None: the hint says what to give

    def as_keyword(self) -> str:
        """The Python API's spelling, ``option=value`` (the default rendering)."""
        return f"{self.option}={'...' if self.value is None else repr(self.value)}"


class KilnError(Exception):
    """Base of every error a user can act on.

    ``hint`` is an optional sentence telling the user what to do next; ``{0}``, ``{1}``, ... in
    it stand for ``remedies`` (options that would fix the error), spelled by whoever shows the
    error: ``str()`` gives the Python API's keyword arguments, the CLI gives flags. ``exit_code``
    is the process exit status the CLI uses for this kind of failure. ``step`` is the Dockerfile
    instruction that was running when the error happened (set by the build loop, see
    ``at_step``), shown above the message as BuildKit shows it.
    """

    exit_code = 1

    def __init__(
        self, message: str, *, hint: str | None = None, remedies: Sequence[Remedy] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.remedies = tuple(remedies)
        self.step: StepLocation | None = None

    def at_step(self, step: StepLocation) -> Self:
        """Record where in the Dockerfile this happened (the first record wins); return self."""
        if self.step is None:
            self.step = step
        return self

    def render(self, spell: Callable[[Remedy], str] = Remedy.as_keyword) -> str:
        """The step (if known), the message, and the hint with each remedy spelled by ``spell``."""
        hint = self.hint
        if hint and self.remedies:
            try:
                hint = hint.format(*(spell(remedy) for remedy in self.remedies))
            except (IndexError, KeyError, ValueError):  # a malformed template: show the names
                hint = f"{hint} ({', '.join(spell(remedy) for remedy in self.remedies)})"
        text = f"{self.message}\nhint: {hint}" if hint else self.message
        if self.step is not None:
            return f"{self.step.render()}\n{text}"
        return text

    def __str__(self) -> str:
        return self.render()


class Interrupted(BaseException):
    """The build was stopped from outside: SIGTERM, SIGINT (``signum``), or a cancel.

    A ``BaseException`` like ``KeyboardInterrupt``, so no ``except Exception`` on the way turns
    it into an ordinary failure: it unwinds through every ``finally`` and context manager, which
    kill the running step, unmount and remove the work dir, and it stops a push before its
    manifest. The CLI exits ``128 + signum`` (143 for SIGTERM, 130 for SIGINT).
    """

    def __init__(self, signum: int | None = None) -> None:
        super().__init__(signum)
        self.signum = signum


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


class ImageFormatError(KilnError):
    """A manifest, index, descriptor or config document is not what its media type promises.

    Raised by ``kiln.image``, which knows no image reference; callers that know it (a pull, a
    saved image being loaded) re-raise with that context.
    """


@dataclass(frozen=True)
class RegistryDiagnostic:
    """One entry of the ``errors`` array a registry answers with (distribution spec):
    ``code`` (``MANIFEST_UNKNOWN``, ``DENIED``, ...), its ``message`` and optional ``detail``."""

    code: str
    message: str = ""
    detail: object = None


class RegistryError(KilnError):
    """A registry request failed (after retries, when retrying could help).

    ``reference`` is the image reference or repository involved, ``status`` the last HTTP status
    (None for connection errors), ``diagnostics`` every entry of the distribution spec's
    ``errors`` array the registry sent, ``code`` the first one's code (``MANIFEST_UNKNOWN``,
    ``UNAUTHORIZED``, ...). ``temporary`` says whether the same request may succeed later (a
    429 or 5xx, a connection that broke): the retry layer retries those, callers may too.
    ``problem`` is the message as given, without the reference and status, for wrapping it in
    another error without repeating them.
    """

    def __init__(
        self,
        message: str,
        *,
        reference: str,
        status: int | None = None,
        code: str | None = None,
        diagnostics: Sequence[RegistryDiagnostic] = (),
        temporary: bool = False,
        retry_after: float | None = None,
        hint: str | None = None,
        remedies: Sequence[Remedy] = (),
    ) -> None:
        self.reference = reference
        self.status = status
        self.diagnostics = tuple(diagnostics)
        self.code = code if code is not None or not diagnostics else diagnostics[0].code
        self.temporary = temporary
        self.retry_after = retry_after
        self.problem = message
        detail = f"{reference}: {message}"
        if status is not None:
            detail += f" (HTTP {status}{', ' + self.code if self.code else ''})"
        super().__init__(detail, hint=hint, remedies=remedies)


class AuthError(RegistryError):
    """Credentials were missing or rejected by a registry."""


class NetworkError(KilnError):
    """An HTTP exchange failed below HTTP: no connection, a timeout, TLS, a broken connection.

    ``temporary`` says whether the same request may well succeed a moment later (refused,
    reset, cut short, too slow); TLS failures, names DNS says do not exist and malformed URLs
    are not. Messages name hosts, never URLs with credentials or query strings.
    """

    temporary = True
    retry_after: float | None = None


class ConnectError(NetworkError):
    """No connection could be made (refused, unreachable, DNS failing for now, proxy refused)."""


class NameNotFound(NetworkError):
    """DNS says the host name does not exist (or has no address): retrying cannot heal it."""

    temporary = False


class NetworkTimeout(NetworkError):
    """Connecting, or waiting for the peer's next bytes, took longer than allowed."""


class ConnectTimeout(ConnectError, NetworkTimeout):
    """The connection (or the TLS handshake) was not established in time."""


class ConnectionLost(NetworkError):
    """The connection broke during the exchange (reset, closed early, not HTTP as expected)."""


class TruncatedBody(ConnectionLost):
    """The response body ended before the length its framing announced."""


class TLSError(NetworkError):
    """The TLS handshake failed (certificate, protocol, client certificate)."""

    temporary = False


class InvalidURL(NetworkError):
    """The URL cannot be requested (unknown scheme, no host, unsupported proxy)."""

    temporary = False


class TooManyRedirects(NetworkError):
    """More redirects than the client follows."""

    temporary = False


class DigestMismatchError(KilnError):
    """Content read from a registry or disk does not hash to the digest that named it."""


class SandboxError(KilnError):
    """The sandbox for RUN could not be set up (missing privileges, mount failure)."""


class RunFailedError(KilnError):
    """A RUN step exited non-zero. ``status`` is its exit status (128+N for signal N).

    The CLI exits with that same status, as Kaniko, buildah and classic `docker build` do: CI
    scripts test it (a failing test suite run in a RUN step keeps its exit code).
    """

    def __init__(self, message: str, *, status: int, hint: str | None = None) -> None:
        self.status = status
        self.exit_code = status if 0 < status < 256 else 1
        super().__init__(message, hint=hint)


class ResourceError(KilnError):
    """The machine ran out of something while kiln wrote or opened files: disk space or quota
    (ENOSPC, EDQUOT), file descriptors (EMFILE, ENFILE) or memory (ENOMEM).

    ``directory`` is where kiln was writing and ``what`` what it was writing, so the user knows
    which filesystem to enlarge (or which option points elsewhere).
    """

    def __init__(
        self,
        message: str,
        *,
        directory: str | None,
        what: str,
        hint: str | None = None,
        remedies: Sequence[Remedy] = (),
    ) -> None:
        self.directory = directory
        self.what = what
        super().__init__(message, hint=hint, remedies=remedies)


class BuildError(KilnError):
    """A build step failed for a reason that is not one of the more specific errors above."""
