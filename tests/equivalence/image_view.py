"""What the equivalence suite compares: a built image reduced to comparable data.

Why its own module: both builders' outputs go through exactly the same reduction (an OCI layout,
`umoci unpack`, a walk of the rootfs, the config fields that matter), so a difference in the
comparison can only come from the images themselves.

Not compared, on purpose (see tests/equivalence/README.md):
- mtimes/atimes (builders stamp their own times);
- the sandbox stubs a RUN leaves behind in buildah (`/proc`, `/sys`, `/dev`, `/run`,
  `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`): mount points, not image content;
- the `io.buildah.version` label buildah adds to every image.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IGNORED_PATHS = frozenset(
    {"proc", "sys", "dev", "run", "etc/hosts", "etc/resolv.conf", "etc/hostname"}
)
BUILDER_LABELS = frozenset({"io.buildah.version"})
CONFIG_FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "Labels",
    "ExposedPorts",
    "Volumes",
    "Healthcheck",
    "StopSignal",
    "OnBuild",
    "Shell",
)


@dataclass(frozen=True)
class ImageView:
    """A built image as plain data: files by path, selected config fields, layer count."""

    files: dict[str, dict[str, Any]]
    config: dict[str, Any]
    layers: int
    history: list[dict[str, Any]]


def _ignored(rel: str) -> bool:
    return any(rel == p or rel.startswith(p + "/") for p in IGNORED_PATHS)


def _entry(path: Path) -> dict[str, Any]:
    st = os.lstat(path)
    mode = st.st_mode
    entry: dict[str, Any] = {
        "type": stat.S_IFMT(mode),
        "mode": oct(stat.S_IMODE(mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
    }
    if stat.S_ISREG(mode):
        entry["size"] = st.st_size
        entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        entry["nlink"] = st.st_nlink
    elif stat.S_ISLNK(mode):
        entry["target"] = os.readlink(path)
    xattrs = {
        name: os.getxattr(path, name, follow_symlinks=False).hex()
        for name in sorted(os.listxattr(path, follow_symlinks=False))
    }
    if xattrs:
        entry["xattrs"] = xattrs
    return entry


def walk_rootfs(rootfs: Path) -> dict[str, dict[str, Any]]:
    """Every path below rootfs (relative, `/`-separated) with type, mode, owner, content."""
    files: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(rootfs):
        for name in [*dirnames, *filenames]:
            full = Path(dirpath) / name
            rel = full.relative_to(rootfs).as_posix()
            if not _ignored(rel):
                files[rel] = _entry(full)
    return files


def _blob(layout: Path, digest: str) -> Any:
    algorithm, hex_digest = digest.split(":", 1)
    return json.loads((layout / "blobs" / algorithm / hex_digest).read_bytes())


def read_layout(layout: Path, workdir: Path) -> ImageView:
    """Unpack the single image in an OCI layout with umoci and reduce it to an ImageView."""
    index = json.loads((layout / "index.json").read_text())
    descriptor = index["manifests"][0]
    tag = descriptor.get("annotations", {}).get("org.opencontainers.image.ref.name", "latest")
    manifest = _blob(layout, descriptor["digest"])
    config_doc = _blob(layout, manifest["config"]["digest"])
    bundle = workdir / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:{tag}", str(bundle)],
        check=True,
        capture_output=True,
    )
    config = config_doc.get("config") or {}
    view_config = {key: config.get(key) for key in CONFIG_FIELDS}
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if k not in BUILDER_LABELS}
    view_config["Labels"] = labels
    return ImageView(
        files=walk_rootfs(bundle / "rootfs"),
        config=_normalise_config(view_config),
        layers=len(manifest["layers"]),
        history=list(config_doc.get("history") or []),
    )


def _normalise_config(config: dict[str, Any]) -> dict[str, Any]:
    """Empty and missing mean the same to a runtime: compare them as None."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        out[key] = value if value not in ({}, [], "", None) else None
    return out


def diff_files(expected: dict[str, dict[str, Any]], actual: dict[str, dict[str, Any]]) -> list[str]:
    """Human-readable differences between two file maps (empty when equal)."""
    problems: list[str] = []
    for path in sorted(set(expected) | set(actual)):
        want, got = expected.get(path), actual.get(path)
        if want is None:
            problems.append(f"/{path}: only in kiln's image {got}")
        elif got is None:
            problems.append(f"/{path}: missing from kiln's image (reference {want})")
        elif want != got:
            fields = sorted(k for k in set(want) | set(got) if want.get(k) != got.get(k))
            shown = ", ".join(f"{k}: ref={want.get(k)!r} kiln={got.get(k)!r}" for k in fields)
            problems.append(f"/{path}: {shown}")
    return problems


def diff_config(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Differences between two reduced configs (empty when equal)."""
    return [
        f"config {key}: ref={expected.get(key)!r} kiln={actual.get(key)!r}"
        for key in CONFIG_FIELDS
        if expected.get(key) != actual.get(key)
    ]
