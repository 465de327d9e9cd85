"""How the sandbox helper tells kiln that setting up the sandbox failed.

Why a pipe rather than the exit status: the exit status belongs to the user's command (any value
0-255 is legitimate), so set-up failures travel on a separate close-on-exec pipe. The helper
writes one JSON object and exits; a successful ``execve`` closes the pipe with nothing written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from kiln.errors import Remedy


class SetupFailure(Exception):
    """A sandbox set-up step failed; ``hint`` says what the user can do about it, with
    ``{0}``... standing for ``remedies`` (options, spelled by the edge: see ``KilnError``)."""

    def __init__(
        self, message: str, hint: str | None = None, remedies: Sequence[Remedy] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.remedies = tuple(remedies)


def from_os_error(
    what: str, exc: OSError, hint: str | None = None, remedies: Sequence[Remedy] = ()
) -> SetupFailure:
    """``"mount proc on /x: Operation not permitted"`` from an ``OSError``."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return SetupFailure(f"{what}: {reason}", hint, remedies if hint else ())


def send(fd: int, failure: SetupFailure) -> None:
    """Write ``failure`` to the report pipe (a single small write, so it is atomic)."""
    remedies = [[remedy.option, remedy.value] for remedy in failure.remedies]
    payload = json.dumps(
        {"message": failure.message, "hint": failure.hint, "remedies": remedies}
    ).encode()
    os.write(fd, payload + b"\n")


def receive(fd: int) -> SetupFailure | None:
    """Read the report pipe to EOF; return the first failure reported, if any."""
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    first = b"".join(chunks).split(b"\n", 1)[0]
    if not first:
        return None
    try:
        data = json.loads(first)
        remedies = [Remedy(str(option), value) for option, value in data.get("remedies", ())]
        return SetupFailure(str(data["message"]), data.get("hint"), remedies)
    except (ValueError, KeyError, TypeError):
        return SetupFailure(f"sandbox helper sent a garbled report: {first[:200]!r}")
