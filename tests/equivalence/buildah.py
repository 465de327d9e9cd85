"""The reference builder: `buildah bud --isolation chroot` with a private store.

Why these flags: `--layers` gives one layer per RUN/COPY/ADD like Docker (without it buildah
squashes a build into one layer); `--format docker` keeps the Docker-only config fields (SHELL,
HEALTHCHECK, ONBUILD); the vfs driver and a private `--root`/`--runroot` keep the tests away from
any system store. Results are pushed as OCI layouts, the same form kiln writes.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuildahResult:
    """A finished reference build: the OCI layout, or the error output if it failed."""

    layout: Path | None
    output: str


class Buildah:
    """buildah with its own storage under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _base(self) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.root / "root"),
            "--runroot",
            str(self.root / "runroot"),
            "--storage-driver",
            "vfs",
        ]

    def build(
        self,
        context: Path,
        tag: str,
        *,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
        dockerfile: str = "Dockerfile",
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            *self._base(),
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            "--tls-verify=false",
            "--format",
            "docker",
            "--network",
            "host",
            "-t",
            tag,
            "-f",
            str(context / dockerfile),
        ]
        for name, value in (build_args or {}).items():
            argv += ["--build-arg", f"{name}={value}"]
        if target:
            argv += ["--target", target]
        argv.append(str(context))
        return subprocess.run(argv, capture_output=True, text=True, timeout=300)

    def push(self, tag: str, destination: str) -> subprocess.CompletedProcess[str]:
        argv = [*self._base(), "push", "--tls-verify=false", tag, destination]
        return subprocess.run(argv, capture_output=True, text=True, timeout=300)

    def build_layout(
        self,
        context: Path,
        name: str,
        out: Path,
        *,
        build_args: dict[str, str] | None = None,
        target: str | None = None,
        dockerfile: str = "Dockerfile",
    ) -> BuildahResult:
        """Build context and write the image to out as an OCI layout (tag `img`)."""
        tag = f"localhost/eq/{name}:latest"
        built = self.build(
            context, tag, build_args=build_args, target=target, dockerfile=dockerfile
        )
        if built.returncode != 0:
            return BuildahResult(None, built.stdout + built.stderr)
        out.parent.mkdir(parents=True, exist_ok=True)
        pushed = self.push(tag, f"oci:{out}:img")
        if pushed.returncode != 0:
            raise RuntimeError(f"buildah push failed: {pushed.stderr}")
        return BuildahResult(out, built.stdout)
