"""Hostile base images, written byte by byte with tarfile into one OCI layout (one tag each).

Why not umoci or a Dockerfile: no well-behaved tool writes these layers (symlink-then-write,
whiteouts and opaque markers through links, hardlinks and names climbing out, device nodes,
setuid files, huge PAX headers); the test writes them itself. Every image starts with the same
busybox layer so a RUN step can look around, and the layout is pushed with skopeo, so kiln pulls
them through the real registry path like any base image.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.base_image import make_rootfs

Member = tuple[tarfile.TarInfo, bytes]

#: a name longer than any classic tar header holds (PAX `path` record)
LONG_DIR = "/".join(["d" * 100] * 30)


@dataclass(frozen=True)
class Attack:
    """One hostile image: layers over busybox, and what building FROM it must end in.

    ``fails``: a message the build must fail with (None: it must succeed). ``inplace_only``:
    an attack on paths that exist only in the inplace executor container (kiln's dir, mounts).
    """

    tag: str
    layers: tuple[tuple[Member, ...], ...]
    fails: str | None = None
    inplace_only: bool = False
    run: str = "true"

    @property
    def attack_count(self) -> int:
        return sum(len(layer) for layer in self.layers)


def member(
    name: str,
    kind: bytes = tarfile.REGTYPE,
    *,
    data: bytes = b"",
    linkname: str = "",
    mode: int = 0o644,
    dev: tuple[int, int] = (0, 0),
    pax: dict[str, str] | None = None,
) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = mode
    info.mtime = 1_600_000_000
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    info.devmajor, info.devminor = dev
    if pax:
        info.pax_headers = dict(pax)
    return info, data


def sym(name: str, target: str) -> Member:
    return member(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hard(name: str, target: str) -> Member:
    return member(name, tarfile.LNKTYPE, linkname=target)


def host_attacks(sentinel_dir: str) -> list[Attack]:
    """Attacks on the machine running kiln (every isolation): ``sentinel_dir`` must not change.

    Inside an image, absolute and climbing symlinks must resolve inside the rootfs, so writes,
    whiteouts, opaque markers and hardlinks through them stay there; names that climb out fail.
    """
    sd = sentinel_dir.strip("/")
    up = "../" * 12
    writes = (
        sym("abs", f"/{sd}"),
        member("abs/sentinel", data=b"pwned through an absolute link\n"),
        sym("rel", f"{up}{sd}"),
        member("rel/rel-file", data=b"pwned through a climbing link\n"),
        member(f"/{sd}/abs-name", data=b"pwned by an absolute name\n"),
        sym("nested/deeper/root", "/"),
        member(f"nested/deeper/root/{sd}/nested", data=b"pwned through a nested root link\n"),
        hard("hl", "abs/sentinel"),
        member("suid", data=b"#!/bin/sh\n", mode=0o4755),
        member("sgid-dir", tarfile.DIRTYPE, mode=0o2777),
        member("evil-null", tarfile.CHRTYPE, mode=0o666, dev=(1, 3)),
        member("evil-loop0", tarfile.BLKTYPE, mode=0o666, dev=(7, 0)),
        member("evil-fifo", tarfile.FIFOTYPE, mode=0o666),
        member(f"{LONG_DIR}/file", data=b"long\n"),
        member("big-pax", data=b"big\n", pax={"comment": "x" * 1_000_000}),
    )
    deletions = (
        member("abs/.wh.abs-name"),  # whiteout through an absolute link
        sym("opq", f"{up}{sd}"),
        member("opq/.wh..wh..opq"),  # opaque directory through a climbing link
        sym("whroot", "/"),
        member(f"whroot/{sd}/.wh.sentinel"),  # whiteout through a root link
    )
    contained_run = (
        # what the image holds, seen from a RUN: the hardlink, setuid bit and long name
        f'test "$(cat /hl)" = "pwned through an absolute link" && test -u /suid '
        f"&& test -f /{LONG_DIR}/file && test -f /big-pax "
        # and a RUN writing through the same links stays inside its root too
        f"&& echo run > /abs/from-run && echo run > /rel/from-run-rel"
    )
    return [
        Attack("contained", (writes, deletions), run=contained_run),
        Attack(
            "dotdot",
            ((member(f"{up}{sd}/sentinel", data=b"pwned by ..\n"),),),
            fails="climbs out of the root filesystem",
        ),
        Attack(
            "hardlink-out",
            ((hard("hl", f"{up}{sd}/sentinel"),),),
            fails="climbs out of the root filesystem",
        ),
        Attack(
            "hardlink-out-through-link",
            ((sym("r", "/"), hard("hl", f"r/{sd}/sentinel")),),
            fails="points at missing",
        ),
    ]


PROTECTED = "which is protected"


def inplace_attacks() -> list[Attack]:
    """Attacks on what the inplace isolation keeps in the executor container: kiln's own
    directory (/kiln), the workspace and output mounts, the service-account token mount."""
    kiln_file = "bin/python3"
    token = "var/run/secrets/kubernetes.io/serviceaccount"
    return [
        Attack("kiln-link-write", ((sym("v", "/kiln/bin"), member("v/python3", data=b"pwned")),),
               fails=PROTECTED, inplace_only=True),
        Attack("kiln-link-newfile", ((sym("x", "/kiln"), member("x/new/file", data=b"pwned")),),
               fails=PROTECTED, inplace_only=True),
        Attack("kiln-link-opaque", ((sym("w", "/kiln"), member("w/.wh..wh..opq")),),
               fails=PROTECTED, inplace_only=True),
        Attack("kiln-link-whiteout", ((sym("w", "/kiln/bin"), member("w/.wh.python3")),),
               fails=PROTECTED, inplace_only=True),
        Attack("kiln-link-symlink", ((sym("w", "/kiln/bin"), sym("w/python3", "/bin/sh")),),
               fails=PROTECTED, inplace_only=True),
        Attack("kiln-hardlink", ((sym("x", "/kiln"), hard("h", f"x/{kiln_file}")),),
               fails=PROTECTED, inplace_only=True),
        Attack("kiln-link-chain", ((sym("a", "b"), sym("b", "/kiln/."), member("a/lib/x")),),
               fails=PROTECTED, inplace_only=True),
        Attack("out-link-write", ((sym("o", "/out"), member("o/sentinel", data=b"pwned")),),
               fails=PROTECTED, inplace_only=True),
        Attack("workspace-link-opaque", ((sym("ws", "/workspace"), member("ws/.wh..wh..opq")),),
               fails=PROTECTED, inplace_only=True),
        Attack("token-link-write", ((sym("s", f"/{token}"), member("s/token", data=b"pwned")),),
               fails=PROTECTED, inplace_only=True),
        Attack("replace-holder", ((member("var", data=b"a file where /var/run is"),),),
               fails="which holds protected paths", inplace_only=True),
        # Named directly into protected paths: dropped (Kaniko's rule), the build goes on.
        Attack(
            "named-inside",
            ((member(f"kiln/{kiln_file}", data=b"pwned"), member("/kiln/new", data=b"pwned"),
              member(".wh.workspace"), member("out/.wh..wh..opq"), hard("h", f"kiln/{kiln_file}"),
              member(f"{token}/token", data=b"pwned")),),
            inplace_only=True,
        ),
        # COPY into kiln's dir through a link the base image planted: refused before writing.
        Attack("copy-through-link", ((sym("c", "/kiln/bin"),),), fails=PROTECTED,
               inplace_only=True, run="COPY:msg.txt /c/python3"),
    ]  # fmt: skip


def busybox_layer(workdir: Path) -> bytes:
    """The busybox rootfs as an uncompressed layer tar."""
    rootfs = make_rootfs(workdir / "busybox-rootfs")
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(rootfs.rglob("*")):
            tar.add(path, arcname=path.relative_to(rootfs).as_posix(), recursive=False)
    return out.getvalue()


def layer_tar(members: Sequence[Member]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.type == tarfile.REGTYPE else None)
    return out.getvalue()


class Layout:
    """An OCI image layout under ``root`` that images are added to, one tag each."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.manifests: list[dict[str, object]] = []

    def _blob(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        (self.root / "blobs" / "sha256" / digest).write_bytes(data)
        return f"sha256:{digest}"

    def add(self, tag: str, layers: Sequence[bytes]) -> None:
        diff_ids = [f"sha256:{hashlib.sha256(raw).hexdigest()}" for raw in layers]
        blobs = [gzip.compress(raw, compresslevel=1, mtime=0) for raw in layers]
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/bin:/bin:/usr/sbin:/sbin"], "Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }).encode()  # fmt: skip
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": self._blob(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": self._blob(blob), "size": len(blob)} for blob in blobs],
        }).encode()  # fmt: skip
        self.manifests.append({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": self._blob(manifest), "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        })  # fmt: skip
        index = {"schemaVersion": 2, "manifests": self.manifests}
        (self.root / "index.json").write_text(json.dumps(index))
