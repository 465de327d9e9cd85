"""How the sandbox helper tells kiln that setting up the sandbox failed.

Why a pipe rather than the exit status: the exit status belongs to the user's command (any value
0-255 is legitimate), so set-up failures travel on a separate close-on-exec pipe. The helper
writes one JSON object and exits; a successful ``execve`` closes the pipe with nothing written.
"""

from __future__ import annotations

import json
import os


class SetupFailure(Exception):
    """A sandbox set-up step failed; ``hint`` says what the user can do about it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def from_os_error(what: str, exc: OSError, hint: str | None = None) -> SetupFailure:
    """``"mount proc on /x: Operation not permitted"`` from an ``OSError``."""
    reason = os.strerror(exc.errno) if exc.errno else str(exc)
    return SetupFailure(f"{what}: {reason}", hint)


def send(fd: int, failure: SetupFailure) -> None:
    """Write ``failure`` to the report pipe (a single small write, so it is atomic)."""
    payload = json.dumps({"message": failure.message, "hint": failure.hint}).encode()
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
        return SetupFailure(str(data["message"]), data.get("hint"))
    except (ValueError, KeyError, TypeError):
        return SetupFailure(f"sandbox helper sent a garbled report: {first[:200]!r}")
