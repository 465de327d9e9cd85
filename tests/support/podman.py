"""Running images with podman as an independent check that what kiln built really runs.

Why the extra setup: on these machines podman works only with runc, host networking and a
containers.conf that keeps rlimits at values the machine can grant. Each test session gets private
storage so runs never share state with the host's podman.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
"""


class Podman:
    """A podman with private storage under root_dir."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = root_dir
        self.conf = root_dir / "containers.conf"
        root_dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(CONTAINERS_CONF)

    def _base(self) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root_dir / "storage"),
            "--runroot",
            str(self.root_dir / "run"),
            "--storage-driver",
            "vfs",
            "--runtime",
            "runc",
        ]

    def run(
        self,
        image: str,
        *command: str,
        tls_verify: bool = False,
        options: Sequence[str] = (),
        timeout: int = 180,
    ) -> subprocess.CompletedProcess[str]:
        """`podman run --rm` the image (pulled from a registry) and capture its output.

        ``options`` go before the image (``-v``, ``--cap-drop``, ``--entrypoint``, ``--creds``).
        """
        args = [
            *self._base(),
            "run",
            "--rm",
            "--network",
            "host",
            f"--tls-verify={'true' if tls_verify else 'false'}",
            *options,
            image,
            *command,
        ]
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={
                "CONTAINERS_CONF": str(self.conf),
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(self.root_dir),
            },
        )

    def load(self, archive: Path) -> subprocess.CompletedProcess[str]:
        """`podman load -i archive`."""
        return subprocess.run(
            [*self._base(), "load", "-i", str(archive)],
            capture_output=True,
            text=True,
            timeout=180,
            env={
                "CONTAINERS_CONF": str(self.conf),
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME": str(self.root_dir),
            },
        )
