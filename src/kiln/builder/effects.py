"""Effects: the filesystem work that dispatch asks the executor to do.

Why values: dispatch stays pure and testable, and the executor is the only place that touches the
rootfs, runs processes or writes layers. Each effect carries the already-expanded words it needs.
"""

from __future__ import annotations

from dataclasses import dataclass

# Where files a RUN needs but must not leave behind (heredoc scripts) are placed, inside the
# rootfs; the directory is excluded from the snapshot and removed after the step.
RUN_FILES_DIR = "/.kiln-run"


@dataclass(frozen=True)
class RunEffect:
    """Run argv in the sandbox with env; the changes become one layer.

    ``files`` are (name, content) pairs written executable under RUN_FILES_DIR for this step only.
    """

    argv: tuple[str, ...]
    env: tuple[str, ...]
    files: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class CopyEffect:
    """COPY/ADD sources (context, a stage or inline heredocs) to dest, relative to workdir."""

    sources: tuple[str, ...]
    dest: str
    workdir: str
    chown: str | None
    chmod: str | None
    from_: str | None
    is_add: bool
    heredocs: tuple[tuple[str, str], ...]
    line: int
    parents: bool = False
    exclude: tuple[str, ...] = ()
    checksum: str | None = None
    unpack: bool | None = None


@dataclass(frozen=True)
class WorkdirEffect:
    """Create the working directory if it is missing (owned by the current USER, like Docker)."""

    path: str
    user: str


Effect = RunEffect | CopyEffect | WorkdirEffect
