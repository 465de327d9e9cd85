"""The `inplace` build root: the container's own `/`, minus what must never be touched.

Why (Kaniko's model for a default pod, where nothing may be mounted or chrooted): the base
image is unpacked over `/` and RUN executes directly. That is destructive, so this module keeps
the rules in one place: the paths never deleted, overwritten or snapshotted (kiln's own
directory, every mount point from `/proc/self/mountinfo` — secrets, the workspace volume, `/proc`,
`/sys`, `/dev`, `/etc/hosts`, `/etc/resolv.conf` — `/var/run` unless told otherwise, and
`--ignore-path` entries), the container check that refuses to run elsewhere unless forced,
the reset between stages, and the save/restore behind `--cleanup`.
Every function takes the `root` it works on, so the rules are tested on a scratch tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

from kiln.errors import Remedy, SandboxError
from kiln.fs import (
    Changes,
    ProtectedPaths,
    apply_layer,
    open_layer,
    remove_unprotected,
    write_layer,
)

MOUNTINFO = Path("/proc/self/mountinfo")
INIT_CGROUP = Path("/proc/1/cgroup")
_CGROUP_HINTS = ("docker", "kubepods", "containerd", "libpod", "crio", "lxc")


#: What inplace builds never touch (the type lives in fs: the unpacker enforces it).
IgnoredPaths = ProtectedPaths


def ignored_paths(
    root: Path,
    kiln_dir: str,
    extra: Iterable[str] = (),
    *,
    ignore_var_run: bool = True,
    mountinfo: str | None = None,
) -> IgnoredPaths:
    """What an inplace build leaves alone under `root` (reads the mount table if not given)."""
    text = mountinfo if mountinfo is not None else MOUNTINFO.read_text(encoding="utf-8")
    base = os.path.abspath(root)
    found = {kiln_dir, *extra, *(("var/run",) if ignore_var_run else ())}
    for point in mount_points(text):
        if point == base or not point.startswith(base.rstrip("/") + "/"):
            continue
        found.add(point[len(base.rstrip("/")) + 1 :])
    return ProtectedPaths.under(base, found)


def mount_points(mountinfo: str) -> list[str]:
    """The mount points listed in a `/proc/self/mountinfo` text (octal escapes decoded)."""
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) > 4:
            points.append(_unescape(fields[4]))
    return points


def container_hint(root: Path = Path("/")) -> str | None:
    """Why this looks like a container (`/.dockerenv`, `$container`, cgroups), or None."""
    for marker in (".dockerenv", "run/.containerenv"):
        if (root / marker).exists():
            return f"/{marker} exists"
    runtime = os.environ.get("container")  # noqa: SIM112 (systemd's lower-case convention)
    if runtime:
        return f"container={runtime} is set"
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return "KUBERNETES_SERVICE_HOST is set"
    try:
        cgroups = INIT_CGROUP.read_text(encoding="utf-8")
    except OSError:
        return None
    hint = next((word for word in _CGROUP_HINTS if word in cgroups), None)
    return f"/proc/1/cgroup mentions {hint}" if hint else None


def check_container(force: bool, root: Path = Path("/")) -> str:
    """Refuse to build over `/` outside a container unless forced; return why it may go on."""
    hint = container_hint(root)
    if hint is not None:
        return hint
    if force:
        return "--force given"
    raise SandboxError(
        "refusing the inplace isolation outside a container: it replaces every file of / "
        "with the base image",
        hint="run kiln in a throwaway container, pass {0} if this machine is one, or use "
        "{1} or {2}",
        remedies=[
            Remedy("force", True),
            Remedy("isolation", "namespaces"),
            Remedy("isolation", "chroot"),
        ],
    )


def reset(root: Path, ignored: IgnoredPaths) -> None:
    """Delete everything under `root` except ignored paths (and the directories holding them)."""
    remove_unprotected(str(root), "", ignored)


def unpack(layer_blob: Path, root: Path, ignored: IgnoredPaths) -> None:
    """Apply one (compressed) layer over `root`, never touching ignored paths.

    Entries named inside them are dropped; entries that reach them through symlinks are
    refused (see ``kiln.fs.apply_layer``).
    """
    with open_layer(layer_blob) as stream:
        apply_layer(stream, root, protected=ignored)


def save(root: Path, ignored: IgnoredPaths, out: Path) -> None:
    """Record every non-ignored file of `root` as a layer blob (for `--cleanup`)."""
    paths: list[str] = []
    _collect(str(root), "", ignored, paths)
    write_layer(root, Changes(changed=tuple(sorted(paths))), out, level=1, include_parents=False)


def restore(root: Path, ignored: IgnoredPaths, saved: Path) -> None:
    """Put `root` back to what `save` recorded: reset, then apply the saved layer."""
    reset(root, ignored)
    unpack(saved, root, ignored)


def _collect(directory: str, prefix: str, ignored: IgnoredPaths, paths: list[str]) -> None:
    with os.scandir(directory) as entries:
        items = [(e.name, stat.S_ISDIR(e.stat(follow_symlinks=False).st_mode)) for e in entries]
    for name, is_dir in items:
        rel = prefix + name
        if ignored.covers(rel):
            continue
        if not (is_dir and ignored.holds(rel)):
            paths.append(rel)
        if is_dir:
            _collect(f"{directory}/{name}", rel + "/", ignored, paths)


def _unescape(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)
