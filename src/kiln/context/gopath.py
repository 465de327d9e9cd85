"""Go's ``path.Clean`` for slash-separated paths.

Why not ``posixpath.normpath``: Docker cleans ``.dockerignore`` patterns and COPY sources with
Go's ``filepath.Clean``, and the two disagree at the edges (``normpath`` keeps a leading ``//``
and never drops ``..`` above a rooted path the same way). Matching Docker byte for byte means
using Go's rules.
"""

from __future__ import annotations


def clean(path: str) -> str:
    """Return the shortest path equivalent to ``path`` by Go's lexical rules.

    Repeated slashes collapse, ``.`` elements vanish, ``name/..`` pairs cancel, ``..`` directly
    under the root is dropped, and the empty path becomes ``.``. A trailing slash is removed.
    """
    rooted = path.startswith("/")
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    joined = "/".join(parts)
    if rooted:
        return "/" + joined
    return joined or "."


def escapes_root(cleaned: str) -> bool:
    """True if a cleaned *relative* path climbs above its starting directory."""
    return cleaned == ".." or cleaned.startswith("../")
