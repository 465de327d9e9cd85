"""Choosing the RUN backend (`--isolation`).

Why a function of its own: `auto` must pick the best backend this environment allows and say which
and why; explicit choices must fail early with the reason when the backend cannot work here.
"""

from __future__ import annotations

import logging

from kiln.errors import SandboxError, UsageError
from kiln.sandbox import NamespacesRunner, Runner

log = logging.getLogger("kiln")

ISOLATIONS = ("auto", "namespaces")


def select_runner(isolation: str) -> Runner:
    """Return a runner for `isolation`, or raise SandboxError saying why it cannot run here."""
    if isolation not in ISOLATIONS:
        raise UsageError(f"unknown isolation {isolation!r}; choose one of {', '.join(ISOLATIONS)}")
    problem = NamespacesRunner.available()
    if problem is not None:
        raise SandboxError(f"the namespaces isolation cannot run here: {problem}")
    if isolation == "auto":
        log.info("Isolation: namespaces (root with CAP_SYS_ADMIN)")
    return NamespacesRunner()
