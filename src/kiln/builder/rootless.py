"""Rootless builds: a non-root `kiln build` re-executes itself as root in a user namespace.

Why in `build` and called by the CLI first thing: every later step (unpacking with owners, RUN
in the `namespaces` backend, writing layers) must already happen inside the namespace, so the
switch is a re-execution of the whole command, decided once from the options. The Python API
cannot re-execute its caller; there a non-root build without a user namespace falls back to
what the environment allows (see `isolation`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from kiln.builder.options import BuildOptions
from kiln.errors import SandboxError
from kiln.sandbox.userns import inside_user_namespace, run_in_user_namespace

log = logging.getLogger("kiln")

#: The isolations that want root inside a user namespace when kiln is not root.
_WANTS_USERNS = ("auto", "namespaces")


def wants_user_namespace(options: BuildOptions) -> bool:
    """Non-root, not yet re-executed, and an isolation that runs in a user namespace."""
    return os.geteuid() != 0 and not inside_user_namespace() and options.isolation in _WANTS_USERNS


def rerun_rootless(options: BuildOptions, argv: Sequence[str]) -> int | None:
    """Run `kiln ARGV` again as root in a user namespace; its exit status, or None to go on.

    None means the namespace cannot be made and `--isolation auto` lets the build continue
    as the plain user (RUN steps then fail with the reasons); `namespaces` raises instead.
    """
    command = [sys.executable, "-m", "kiln.cli.main", *argv]
    log.info("Rootless: re-executing kiln as root in a new user namespace (uid %d)", os.getuid())
    try:
        return run_in_user_namespace(command, os.environ)
    except SandboxError as exc:
        if options.isolation == "namespaces":
            raise
        log.warning("cannot enter a user namespace (%s); building as uid %d", exc, os.getuid())
        return None
