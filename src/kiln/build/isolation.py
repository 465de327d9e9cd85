"""Choosing the RUN backend (`--isolation`).

Why a function of its own: `auto` must pick the best backend this environment allows and say which
and why; explicit choices must fail early with the reason when the backend cannot work here.
The order is the order of isolation strength: `namespaces` (root with CAP_SYS_ADMIN, or root in
the user namespace a rootless kiln re-executed itself in, see `rootless`), then `chroot` (root
with CAP_SYS_CHROOT only: a default pod), then `inplace` (`/` itself as the build root, see
`inplace_root`), which `auto` picks only inside a container where neither of the others works:
it replaces the container's files, so it is the last resort, never a default on a host.
Whether a build is inplace is decided before the first stage (`inplace_reason`), because the
stages' filesystems depend on it; the runner itself is still chosen on the first RUN.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from kiln.build.inplace_root import container_hint
from kiln.errors import SandboxError, UsageError
from kiln.sandbox import ChrootRunner, InplaceRunner, NamespacesRunner, Runner
from kiln.sandbox.userns import current_mapping

log = logging.getLogger("kiln")

ISOLATIONS = ("auto", "namespaces", "chroot", "inplace")

_BACKENDS: dict[str, tuple[Callable[[], str | None], Callable[[], Runner]]] = {
    "namespaces": (NamespacesRunner.available, NamespacesRunner),
    "chroot": (ChrootRunner.available, ChrootRunner),
    "inplace": (InplaceRunner.available, InplaceRunner),
}
_AUTO_ORDER = ("namespaces", "chroot")


def inplace_reason(isolation: str) -> str | None:
    """Why this build runs in `/` itself, or None: asked for, or `auto`'s last resort."""
    if isolation not in ISOLATIONS:
        raise UsageError(f"unknown isolation {isolation!r}; choose one of {', '.join(ISOLATIONS)}")
    if isolation == "inplace":
        return "chosen with --isolation"
    if isolation != "auto":
        return None
    # Cheapest check first: chroot's reads /proc/self/status, namespaces' waits for its probe
    # (still running right after start-up); one working backend settles the answer.
    problems: dict[str, str | None] = {}
    for name in reversed(_AUTO_ORDER):
        problems[name] = _BACKENDS[name][0]()
        if problems[name] is None:
            return None
    inside = container_hint()
    if inside is None or os.geteuid() != 0 or InplaceRunner.available() is not None:
        return None  # replacing / is only ever worth it as root in a throwaway container
    return f"inside a container ({inside}); " + "; ".join(str(problems[n]) for n in _AUTO_ORDER)


def select_runner(isolation: str, inplace: str | None = None) -> Runner:
    """Return a runner for `isolation`, or raise SandboxError saying why it cannot run here.

    ``inplace`` is `inplace_reason(isolation)`: when set, the build runs in `/` and so must its
    steps, whatever `auto` would otherwise have picked.
    """
    if isolation not in ISOLATIONS:
        raise UsageError(f"unknown isolation {isolation!r}; choose one of {', '.join(ISOLATIONS)}")
    if inplace is not None:
        _announce("inplace", inplace)
        return InplaceRunner()
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
    for name in _AUTO_ORDER:
        available, make = _BACKENDS[name]
        problem = available()
        if problem is None:
            _announce(name, _why(name, reasons))
            return make()
        reasons.append(problem)
    raise SandboxError(
        "no isolation backend can run RUN steps here: " + "; ".join(reasons),
        hint="run kiln as root (a default container is enough for chroot isolation), as a "
        "user allowed to create user namespaces, or as root in a throwaway container with "
        "--isolation inplace",
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
