"""Independent checks with tools kiln does not share code with: skopeo, umoci, and kiln's CLI.

Why subprocesses: an end-to-end test should see what a user sees (the `kiln` command, its exit
status and its messages) and judge the result with someone else's implementation of the specs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def run_kiln(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: int = 300,
    input: str | None = None,
    prefix: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """Run the kiln CLI (`python -m kiln.cli.main ARGS`) and capture its output; ``prefix`` is
    a command that runs it (e.g. ``LocalDNS.prefix``)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [*prefix, sys.executable, "-m", "kiln.cli.main", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        input=input,
    )


def skopeo_inspect(ref: str, *flags: str) -> Any:
    """`skopeo inspect` a registry reference (or transport:ref) and return the parsed JSON."""
    target = ref
    if not ref.startswith(("oci:", "docker-archive:", "docker://")):
        target = f"docker://{ref}"
    out = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", *flags, target],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def umoci_unpack(ref: str, workdir: Path, authfile: Path | None = None) -> Path:
    """Copy a registry image to an OCI layout with skopeo, unpack it with umoci, return rootfs."""
    workdir.mkdir(parents=True, exist_ok=True)
    layout = workdir / "layout"
    auth = [f"--src-authfile={authfile}"] if authfile is not None else []
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", *auth, f"docker://{ref}", f"oci:{layout}:img"],
        check=True,
        capture_output=True,
    )
    bundle = workdir / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--image", f"{layout}:img", str(bundle)],
        check=True,
        capture_output=True,
    )
    return bundle / "rootfs"
