"""Choosing the RUN backend (`--isolation`).

Why a function of its own: `auto` must pick the best backend this environment allows and say which
and why; explicit choices must fail early with the reason when the backend cannot work here.
The order is the order of isolation strength: `namespaces` (root with CAP_SYS_ADMIN, or root in
the user namespace a rootless kiln re-executed itself in, see `rootless`), then `chroot` (root
with CAP_SYS_CHROOT only: a default pod). `inplace` (`/` itself as the build root) has its
runner and rules (`inplace_root`) but is not wired into the build loop yet, so it is not offered.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kiln.errors import SandboxError, UsageError
from kiln.sandbox import ChrootRunner, NamespacesRunner, Runner
from kiln.sandbox.userns import current_mapping

log = logging.getLogger("kiln")

ISOLATIONS = ("auto", "namespaces", "chroot")

_BACKENDS: dict[str, tuple[Callable[[], str | None], Callable[[], Runner]]] = {
    "namespaces": (NamespacesRunner.available, NamespacesRunner),
    "chroot": (ChrootRunner.available, ChrootRunner),
}


def select_runner(isolation: str) -> Runner:
    """Return a runner for `isolation`, or raise SandboxError saying why it cannot run here."""
    if isolation not in ISOLATIONS:
        raise UsageError(f"unknown isolation {isolation!r}; choose one of {', '.join(ISOLATIONS)}")
    if isolation != "auto":
        available, make = _BACKENDS[isolation]
        problem = available()
        if problem is not None:
            raise SandboxError(
                f"the {isolation} isolation cannot run here: {problem}",
                hint="--isolation auto picks the best backend this environment allows",
            )
        _announce(isolation, "chosen with --isolation")
        return make()
    reasons: list[str] = []
    for name, (available, make) in _BACKENDS.items():
        problem = available()
        if problem is None:
            _announce(name, _why(name, reasons))
            return make()
        reasons.append(problem)
    raise SandboxError(
        "no isolation backend can run RUN steps here: " + "; ".join(reasons),
        hint="run kiln as root (a default container is enough for chroot isolation), or as a "
        "user allowed to create user namespaces",
    )


def _why(name: str, rejected: list[str]) -> str:
    if name == "namespaces":
        mapping = current_mapping()
        if mapping is not None:
            return f"rootless: root in a user namespace ({mapping})"
        return "root with CAP_SYS_ADMIN"
    return "; ".join(rejected)


def _announce(name: str, why: str) -> None:
    log.info("Isolation: %s (%s)", name, why)
    if name == "chroot":
        log.warning("%s", ChrootRunner.limitations)
