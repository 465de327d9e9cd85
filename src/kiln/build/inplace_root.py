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
import shutil
import stat
import tarfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from kiln.errors import SandboxError
from kiln.fs import Changes, apply_layer, open_layer, write_layer

MOUNTINFO = Path("/proc/self/mountinfo")
INIT_CGROUP = Path("/proc/1/cgroup")
_CGROUP_HINTS = ("docker", "kubepods", "containerd", "libpod", "crio", "lxc")


@dataclass(frozen=True)
class IgnoredPaths:
    """Root-relative paths (no leading `/`) that inplace builds never touch."""

    paths: frozenset[str]

    def covers(self, rel: str) -> bool:
        """`rel` is ignored itself or lies below an ignored path."""
        rel = rel.strip("/")
        return any(rel == p or rel.startswith(p + "/") for p in self.paths)

    def holds(self, rel: str) -> bool:
        """`rel` is a directory with an ignored path somewhere below it (keep it, go inside)."""
        rel = rel.strip("/")
        return rel == "" or any(p.startswith(rel + "/") for p in self.paths)


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
    return IgnoredPaths(frozenset(p.strip("/") for p in found if p.strip("/")))


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
        hint="run kiln in a throwaway container, pass --force if this machine is one, or use "
        "--isolation chroot/namespaces",
    )


def reset(root: Path, ignored: IgnoredPaths) -> None:
    """Delete everything under `root` except ignored paths (and the directories holding them)."""
    _reset_dir(str(root), "", ignored)


def _reset_dir(directory: str, prefix: str, ignored: IgnoredPaths) -> None:
    with os.scandir(directory) as entries:
        names = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for name, is_dir in names:
        rel = prefix + name
        path = f"{directory}/{name}"
        if ignored.covers(rel):
            continue
        if is_dir and ignored.holds(rel):
            _reset_dir(path, rel + "/", ignored)
        elif is_dir:
            shutil.rmtree(path)
        else:
            os.unlink(path)


def unpack(layer_blob: Path, root: Path, ignored: IgnoredPaths) -> None:
    """Apply one (compressed) layer over `root`, dropping entries that touch ignored paths."""
    with open_layer(layer_blob) as stream, _filtered(stream, ignored) as clean:
        apply_layer(clean, root)


@contextmanager
def _filtered(stream: BinaryIO, ignored: IgnoredPaths) -> Iterator[BinaryIO]:
    read_fd, write_fd = os.pipe()
    errors: list[BaseException] = []

    def pump() -> None:
        try:
            with (
                os.fdopen(write_fd, "wb") as sink,
                tarfile.open(fileobj=stream, mode="r|") as source,
                tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as out,
            ):
                for member in source:
                    if _keeps(member, ignored):
                        out.addfile(member, source.extractfile(member) if member.isreg() else None)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=pump, name="kiln-inplace-filter", daemon=True)
    thread.start()
    with os.fdopen(read_fd, "rb") as clean:
        try:
            yield clean
        finally:
            while clean.read(65536):
                pass  # let the pump finish even if extraction stopped early
            thread.join()
    if errors:
        raise errors[0]


def _keeps(member: tarfile.TarInfo, ignored: IgnoredPaths) -> bool:
    name = os.path.normpath(member.name).lstrip("/")
    name = "" if name == "." else name
    parent, _, base = name.rpartition("/")
    if base == ".wh..wh..opq":
        return not ignored.covers(parent) and not ignored.holds(parent)
    if base.startswith(".wh."):
        target = f"{parent}/{base[4:]}" if parent else base[4:]
        return not ignored.covers(target) and not ignored.holds(target)
    if member.islnk() and ignored.covers(os.path.normpath(member.linkname).lstrip("/")):
        return False
    return not ignored.covers(name)


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
