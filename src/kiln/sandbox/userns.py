"""Rootless kiln: re-execute a command as root inside a new user namespace.

Why the whole process and not just RUN (buildah's ``unshare`` model): a rootless build must
unpack base layers with their owners, let ``RUN chown`` and ``apt-get`` see root, and record
in-container owners in its layers. All of that holds when kiln itself runs as root in a user
namespace whose ids map to the user's own: ``/etc/subuid`` and ``/etc/subgid`` ranges through
``newuidmap``/``newgidmap`` when both exist (the user's id becomes 0, the range 1..N), else the
single mapping an unprivileged process may write itself (its id becomes 0; other ids cannot be
used, so ``chown`` to them fails and unpacking keeps such files as root, with a warning).
Inside, the ``namespaces`` backend works unchanged (it bind-mounts ``/dev`` nodes and ``/sys``
where a user namespace may not create them).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from kiln.errors import SandboxError
from kiln.sandbox._interpreter import helper_command, helper_env
from kiln.sandbox._userns_init import MARKER

SUBUID = Path("/etc/subuid")
SUBGID = Path("/etc/subgid")
_MODULE = "kiln.sandbox._userns_init"


@dataclass(frozen=True)
class IdMap:
    """One line of a ``uid_map``/``gid_map``: ``inside`` .. ``inside+count`` = ``outside`` ..."""

    inside: int
    outside: int
    count: int


def subordinate_ranges(path: Path, name: str, ident: int) -> list[tuple[int, int]]:
    """The ``(start, count)`` ranges ``path`` (subuid/subgid format) grants user ``name``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    ranges = []
    for line in lines:
        fields = line.strip().split(":")
        if len(fields) == 3 and fields[0] in (name, str(ident)):
            with contextlib.suppress(ValueError):
                ranges.append((int(fields[1]), int(fields[2])))
    return ranges


def id_maps(ident: int, ranges: list[tuple[int, int]]) -> list[IdMap]:
    """``ident`` becomes 0; the subordinate ranges follow from 1."""
    maps = [IdMap(0, ident, 1)]
    inside = 1
    for start, count in ranges:
        maps.append(IdMap(inside, start, count))
        inside += count
    return maps


def current_mapping() -> str | None:
    """Describe this process's user namespace, or None when it is the initial one."""
    try:
        lines = Path("/proc/self/uid_map").read_text(encoding="ascii").split("\n")
    except OSError:
        return None
    maps = [IdMap(*map(int, line.split())) for line in lines if line.strip()]
    if maps == [IdMap(0, 0, 4294967295)]:
        return None
    return "; ".join(
        f"uids {m.inside}-{m.inside + m.count - 1} = host {m.outside}-{m.outside + m.count - 1}"
        for m in maps
    )


def inside_user_namespace() -> bool:
    """Whether kiln already re-executed itself (the marker is set)."""
    return MARKER in os.environ


def run_in_user_namespace(command: list[str], env: Mapping[str, str]) -> int:
    """Run ``command`` as root in a new user + mount namespace; return its exit status.

    Raises ``SandboxError`` if the namespace cannot be made (the command did not start).
    """
    ready_read, ready_write = os.pipe()
    go_read, go_write = os.pipe()
    path = [helper_env()["PYTHONPATH"], *filter(None, [env.get("PYTHONPATH")])]
    child_env = {**env, MARKER: "1", "PYTHONPATH": os.pathsep.join(path)}
    try:
        child = subprocess.Popen(
            [*helper_command(_MODULE), "--ready-fd", str(ready_write), "--go-fd", str(go_read),
             "--", *command],
            pass_fds=(ready_write, go_read),
            env=child_env,
        )  # fmt: skip
    finally:
        os.close(ready_write)
        os.close(go_read)
    with os.fdopen(go_write, "wb", buffering=0) as go:
        try:
            with os.fdopen(ready_read, "rb") as ready:
                answer = ready.read().decode(errors="replace").strip()
            if answer != "ok":
                raise SandboxError(
                    answer or "the user-namespace helper exited early",
                    hint="unprivileged user namespaces may be disabled "
                    "(sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)",
                )
            write_maps(child.pid)
            go.write(b"ok")
        except BaseException:
            child.kill()
            child.wait()
            raise
    return _wait_forwarding_signals(child)


def write_maps(pid: int) -> None:
    """Map the caller's ids into ``pid``'s new user namespace (subordinate ranges if possible)."""
    uid, gid = os.getuid(), os.getgid()
    name = pwd.getpwuid(uid).pw_name if _has_passwd_entry(uid) else str(uid)
    uid_ranges = subordinate_ranges(SUBUID, name, uid)
    gid_ranges = subordinate_ranges(SUBGID, name, uid)
    newuidmap, newgidmap = shutil.which("newuidmap"), shutil.which("newgidmap")
    if uid_ranges and gid_ranges and newuidmap and newgidmap:
        _run_map_tool(newuidmap, pid, id_maps(uid, uid_ranges))
        _run_map_tool(newgidmap, pid, id_maps(gid, gid_ranges))
        return
    proc = Path(f"/proc/{pid}")
    try:
        (proc / "setgroups").write_text("deny")
        (proc / "uid_map").write_text(f"0 {uid} 1\n")
        (proc / "gid_map").write_text(f"0 {gid} 1\n")
    except OSError as exc:
        raise SandboxError(f"cannot write the user namespace's id maps: {exc}") from exc


def _run_map_tool(tool: str, pid: int, maps: list[IdMap]) -> None:
    args = [str(v) for m in maps for v in (m.inside, m.outside, m.count)]
    result = subprocess.run([tool, str(pid), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SandboxError(
            f"{Path(tool).name} {pid} {' '.join(args)} failed: {result.stderr.strip()}",
            hint="check this user's ranges in /etc/subuid and /etc/subgid",
        )


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _wait_forwarding_signals(child: subprocess.Popen[bytes]) -> int:
    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - status if status < 0 else status


__all__ = [
    "IdMap",
    "current_mapping",
    "id_maps",
    "inside_user_namespace",
    "run_in_user_namespace",
    "subordinate_ranges",
    "write_maps",
]
