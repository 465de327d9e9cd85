"""Dockerfile bytes -> text: UTF-8, or a located error saying which line is not.

Why it exists: Docker reads Dockerfiles as UTF-8. BuildKit's parser works on Go strings and so
carries invalid bytes through (into RUN argv as raw bytes, into the image config as U+FFFD);
kiln refuses them instead, naming the line and column, because a silently mangled label or
path is worse than an error the user can fix by re-saving the file. A UTF-16 file (what some
Windows editors write) gets a hint saying so.
"""

from __future__ import annotations

from kiln.errors import DockerfileError

__all__ = ["decode_dockerfile"]

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_dockerfile(data: bytes, filename: str) -> str:
    """``data`` decoded as UTF-8; DockerfileError at the first invalid byte's line otherwise."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = "save the Dockerfile as UTF-8"
        if data.startswith(_UTF16_BOMS):
            hint = "the file looks like UTF-16; save it as UTF-8"
        raise DockerfileError(
            f"the Dockerfile is not valid UTF-8: byte 0x{data[exc.start]:02x} at column "
            f"{column} ({exc.reason})",
            file=filename,
            line=line,
            hint=hint,
        ) from None
