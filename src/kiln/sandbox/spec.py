"""What a RUN step asks of a sandbox, and the one-method protocol every backend implements.

Why separate from the backends: the build loop constructs a ``RunSpec`` and calls
``runner.run(spec)`` without knowing whether namespaces, a plain chroot or (later) a rootless
user namespace executes it. Keeping the value and the protocol here lets backends be added
without touching callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

NETWORK_MODES = ("host", "none")


class BinarySink(Protocol):
    """A writable binary stream (a file, ``sys.stdout.buffer``, ``io.BytesIO``, a log writer)."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


#: Where a stream goes: ``None`` inherits kiln's own fd, an ``int`` is a raw fd, anything else is
#: a :class:`BinarySink` (one with a real ``fileno()`` is handed to the process directly,
#: others, such as ``io.BytesIO``, are fed through a pipe).
Output = BinarySink | int | None


@dataclass(frozen=True)
class RunSpec:
    """One process to run inside ``rootfs``.

    ``env`` is exactly the environment the process gets (``"KEY=VALUE"`` entries; nothing from the
    host leaks in). ``cwd`` must already exist inside the rootfs (WORKDIR creates it).
    ``argv[0]`` without a slash is looked up in the ``PATH`` of ``env``, inside the rootfs.
    ``network`` is ``"host"`` (share the host's network) or ``"none"`` (only loopback).
    stdin is always ``/dev/null``. Passing the same object as ``stdout`` and ``stderr`` keeps
    their interleaving.
    """

    rootfs: Path
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    hostname: str = "kiln"
    network: str = "host"
    stdout: Output = None
    stderr: Output = None

    def __post_init__(self) -> None:
        # Accept lists from callers but store tuples, so the value really is immutable.
        object.__setattr__(self, "rootfs", Path(self.rootfs))
        object.__setattr__(self, "argv", tuple(self.argv))
        object.__setattr__(self, "env", tuple(self.env))
        object.__setattr__(self, "groups", tuple(self.groups))
        if not self.argv:
            raise ValueError("RunSpec.argv must not be empty")
        if not self.cwd.startswith("/"):
            raise ValueError(f"RunSpec.cwd must be an absolute path, got {self.cwd!r}")
        if self.network not in NETWORK_MODES:
            raise ValueError(
                f"RunSpec.network must be one of {NETWORK_MODES}, got {self.network!r}"
            )
        bad = [entry for entry in self.env if "=" not in entry]
        if bad:
            raise ValueError(f"RunSpec.env entries must look like KEY=VALUE, got {bad!r}")


class Runner(Protocol):
    """Executes RUN steps. Implementations: :class:`kiln.sandbox.NamespacesRunner`."""

    def run(self, spec: RunSpec) -> int:
        """Run ``spec`` to completion; return its exit status (128+N if killed by signal N).

        Raises :class:`kiln.errors.SandboxError` when the sandbox itself cannot be set up.
        """
        ...
