"""The instructions kiln hands to the sandbox helper process, and their wire format.

Why: the helper (``python -m kiln.sandbox._init``) is a fresh interpreter that enters the new
namespaces; it receives everything it needs as one JSON document on a pipe (never on its command
line, where other users could read the environment). The parent decides what is safe to mount
(it has inspected the rootfs); the helper only carries the plan out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # not at run time: the fork server would load pathlib for an annotation
    from kiln.sandbox.spec import RunSpec


@dataclass(frozen=True)
class FileBind:
    """Bind host file ``source`` read-only over ``target`` (relative to the rootfs)."""

    source: str
    target: str


@dataclass(frozen=True)
class SandboxPlan:
    """Everything the helper needs; ``rootfs`` is an absolute, symlink-free host path."""

    rootfs: str
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    hostname: str
    network: str
    file_binds: tuple[FileBind, ...]

    @classmethod
    def for_spec(
        cls,
        spec: RunSpec,
        *,
        rootfs: str,
        hostname: str,
        network: str,
        file_binds: tuple[FileBind, ...] = (),
    ) -> SandboxPlan:
        """``spec``'s process fields plus what the backend decided about the rest."""
        return cls(
            rootfs=rootfs,
            argv=spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            uid=spec.uid,
            gid=spec.gid,
            groups=spec.groups,
            hostname=hostname,
            network=network,
            file_binds=file_binds,
        )

    def to_json(self) -> bytes:
        """Serialise for the helper's plan pipe."""
        data = {
            "rootfs": self.rootfs,
            "argv": list(self.argv),
            "env": list(self.env),
            "cwd": self.cwd,
            "uid": self.uid,
            "gid": self.gid,
            "groups": list(self.groups),
            "hostname": self.hostname,
            "network": self.network,
            "file_binds": [[b.source, b.target] for b in self.file_binds],
        }
        return json.dumps(data).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SandboxPlan:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(raw)
        return cls(
            rootfs=str(data["rootfs"]),
            argv=tuple(str(a) for a in data["argv"]),
            env=tuple(str(e) for e in data["env"]),
            cwd=str(data["cwd"]),
            uid=int(data["uid"]),
            gid=int(data["gid"]),
            groups=tuple(int(g) for g in data["groups"]),
            hostname=str(data["hostname"]),
            network=str(data["network"]),
            file_binds=tuple(FileBind(str(s), str(t)) for s, t in data["file_binds"]),
        )
