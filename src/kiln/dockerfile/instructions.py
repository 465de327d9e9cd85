"""Typed Dockerfile instructions: one frozen dataclass per keyword.

Why it exists: the build's dispatch wants to pattern-match on what an instruction *means*
(a COPY with these sources and this ``--chown``), not re-parse text. Every value here is kept
exactly as written (quotes included where Docker keeps them, ``$vars`` unexpanded), because
only the build knows the environment: at dispatch, ``instruction.expand(expander)`` returns the
instruction with the words the builder expands expanded (as BuildKit's commands expand
themselves), and every other field as written.

Every instruction carries ``keyword`` (upper case), ``line``/``end_line`` (1-based, inclusive),
``original`` (the logical line Docker records in history), ``source`` (the raw text, heredoc
bodies included), ``flags`` (``{"from": "build"}``; the last value when a flag repeats, "true"
or "false" for boolean flags) and ``raw_flags`` (every ``--flag`` word in order).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Self

from kiln.dockerfile.heredoc import Heredoc
from kiln.dockerfile.lexer import Expander

__all__ = [
    "AddInstruction",
    "ArgInstruction",
    "CmdInstruction",
    "CopyInstruction",
    "EntrypointInstruction",
    "EnvInstruction",
    "ExposeInstruction",
    "FromInstruction",
    "HealthcheckInstruction",
    "Instruction",
    "LabelInstruction",
    "MaintainerInstruction",
    "OnbuildInstruction",
    "RunInstruction",
    "ShellInstruction",
    "StopsignalInstruction",
    "UserInstruction",
    "VolumeInstruction",
    "WorkdirInstruction",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Instruction:
    """What every instruction has: where it is and how it was written.

    Slotted (no instance ``__dict__``): the parser makes one instruction per line, with
    ``bulk.maker`` (the figures are there). ``flags`` of an instruction without ``--flag``
    words is the shared, unchangeable ``bulk.EMPTY_FLAGS``.
    """

    keyword: str
    line: int
    end_line: int
    original: str
    source: str = ""
    flags: dict[str, str] = field(default_factory=dict)
    raw_flags: tuple[str, ...] = ()

    def expand(self, expander: Expander) -> Self:
        """This instruction with its words expanded (raises ``ExpansionError``).

        Nothing, unless the keyword's class says otherwise: the text of RUN, CMD, ENTRYPOINT,
        SHELL and HEALTHCHECK is for the shell in the image, ONBUILD triggers expand when they
        fire, MAINTAINER is kept literally, as in Docker.
        """
        return self


@dataclass(frozen=True, kw_only=True, slots=True)
class FromInstruction(Instruction):
    """``FROM [--platform=P] image [AS name]``; ``name`` is lower-cased as Docker does."""

    image: str
    name: str | None = None
    platform: str | None = None

    def expand(self, expander: Expander) -> Self:
        """The base image and ``--platform`` (with the global ARGs); the stage name is literal."""
        image = expander.word(self.image)
        platform = None if self.platform is None else expander.word(self.platform)
        return replace(self, image=image, platform=platform)


@dataclass(frozen=True, kw_only=True, slots=True)
class _CommandLine(Instruction):
    """Shared shape of RUN/CMD/ENTRYPOINT.

    Exec form: ``command`` is the JSON list, ``exec_form`` True. Shell form: ``command`` is the
    text after keyword and flags exactly as Docker keeps it (``/bin/sh -c <text>`` in history).
    """

    command: list[str] | str
    exec_form: bool
    heredocs: tuple[Heredoc, ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class RunInstruction(_CommandLine):
    """``RUN``; ``mounts`` are the raw ``--mount`` values in order, ``network``/``security`` raw."""

    mounts: tuple[str, ...] = ()
    network: str | None = None
    security: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CmdInstruction(_CommandLine):
    """``CMD`` (shell form with empty text is allowed, as in Docker)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EntrypointInstruction(_CommandLine):
    """``ENTRYPOINT``."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ShellInstruction(Instruction):
    """``SHELL ["executable", "param"]`` (JSON form only)."""

    shell: list[str]


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvInstruction(Instruction):
    """``ENV``; values keep their quotes (``a="x y"`` -> ``("a", '"x y"')``) until expansion."""

    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False

    def expand(self, expander: Expander) -> Self:
        """The values (each sees the environment from before the instruction); names are literal."""
        return replace(self, pairs=tuple((k, expander.word(v)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelInstruction(Instruction):
    """``LABEL``; like ENV, keys and values are unexpanded and keep their quotes."""

    pairs: tuple[tuple[str, str], ...]
    legacy: bool = False

    def expand(self, expander: Expander) -> Self:
        """Keys and values."""
        word = expander.word
        return replace(self, pairs=tuple((word(k), word(v)) for k, v in self.pairs))


@dataclass(frozen=True, kw_only=True, slots=True)
class ArgInstruction(Instruction):
    """``ARG name[=default] ...``; a None default means "no default given".

    Not expanded by ``expand``: each name and default sees the ARGs declared before it on the
    same line, and a default is expanded only when no build arg replaces it, so dispatch
    expands them one by one.
    """

    args: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ExposeInstruction(Instruction):
    """``EXPOSE 80 443/tcp`` (source order; unexpanded)."""

    ports: tuple[str, ...]

    def expand(self, expander: Expander) -> Self:
        """Each port, split again on whitespace (``EXPOSE $PORTS`` may name several)."""
        return replace(self, ports=tuple(w for p in self.ports for w in expander.words(p)))


@dataclass(frozen=True, kw_only=True, slots=True)
class VolumeInstruction(Instruction):
    """``VOLUME /a /b`` or ``VOLUME ["/a"]``."""

    paths: tuple[str, ...]

    def expand(self, expander: Expander) -> Self:
        """Each path."""
        return replace(self, paths=tuple(expander.word(p) for p in self.paths))


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkdirInstruction(Instruction):
    """``WORKDIR path``."""

    path: str

    def expand(self, expander: Expander) -> Self:
        """The path."""
        return replace(self, path=expander.word(self.path))


@dataclass(frozen=True, kw_only=True, slots=True)
class UserInstruction(Instruction):
    """``USER user[:group]``."""

    user: str

    def expand(self, expander: Expander) -> Self:
        """The user (and group)."""
        return replace(self, user=expander.word(self.user))


@dataclass(frozen=True, kw_only=True, slots=True)
class CopyInstruction(Instruction):
    """``COPY``: ``sources`` are paths; inline files from heredocs are in ``heredocs``.

    JSON form (``COPY ["a b", "/dst/"]``) gives the JSON strings; shell form splits on
    whitespace without quote handling, as Docker does.
    """

    sources: tuple[str, ...]
    dest: str
    chown: str | None = None
    chmod: str | None = None
    from_: str | None = None
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    heredocs: tuple[Heredoc, ...] = ()

    def expand(self, expander: Expander) -> Self:
        """Sources, destination, ``--chown``, ``--from``, ``--exclude`` patterns, and the bodies
        of heredocs whose delimiter was not quoted; ``--chmod`` (and ADD's ``--checksum``)
        literal, as in BuildKit."""
        word = expander.word
        return replace(
            self,
            sources=tuple(word(s) for s in self.sources),
            dest=word(self.dest),
            chown=word(self.chown) if self.chown else None,
            from_=word(self.from_) if self.from_ else None,
            heredocs=tuple(
                replace(h, content=expander.heredoc(h.content)) if h.expand else h
                for h in self.heredocs
            ),
            exclude=tuple(word(p) for p in self.exclude),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AddInstruction(CopyInstruction):
    """``ADD``: COPY's fields plus ``checksum``, ``keep_git_dir`` and ``unpack`` (None: default)."""

    checksum: str | None = None
    keep_git_dir: bool = False
    unpack: bool | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StopsignalInstruction(Instruction):
    """``STOPSIGNAL SIGTERM`` or a number (unexpanded)."""

    signal: str

    def expand(self, expander: Expander) -> Self:
        """The signal."""
        return replace(self, signal=expander.word(self.signal))


@dataclass(frozen=True, kw_only=True, slots=True)
class HealthcheckInstruction(Instruction):
    """``HEALTHCHECK``.

    ``test`` is Docker's config form: ``["CMD", arg, ...]`` (exec), ``["CMD-SHELL", text]``
    (shell), or None for ``HEALTHCHECK NONE``. Durations are parsed Go-style (``1m30s``) into
    integer nanoseconds, 0 meaning "not given" (inherit), exactly as the image config stores
    them; ``retries`` 0 means "not given".
    """

    test: list[str] | None
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class OnbuildInstruction(Instruction):
    """``ONBUILD <trigger>``; ``trigger`` is the text stored in the image config's OnBuild.

    Heredoc bodies of the trigger are appended to it the way Docker does, so the trigger can be
    parsed again as a Dockerfile line in a child build.
    """

    trigger: str


@dataclass(frozen=True, kw_only=True, slots=True)
class MaintainerInstruction(Instruction):
    """``MAINTAINER name`` (deprecated; parsing adds a warning)."""

    name: str
