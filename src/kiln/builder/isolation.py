"""Choosing the RUN backend (`--isolation`).

Why a function of its own: `auto` must pick the best backend this environment allows and say which
and why; explicit choices must fail early with the reason when the backend cannot work here.
The order is the order of isolation strength: `namespaces` (root with CAP_SYS_ADMIN, or root in
the user namespace a rootless kiln re-executed itself in, see `rootless`), then `chroot` (root
with mount rights but no usable namespaces), then `inplace` (`/` itself as the build root, see
`inplace_root`), which `auto` picks only inside a container where neither of the others works —
a default Kubernetes pod: it replaces the container's files, so it is the last resort, never a
default on a host.

A backend counts as working only if its RUN steps get what Docker gives them: `/proc`, a `/dev`
with null, zero, full, random, urandom, tty, shm and pts, and `/sys` (issue 10.15: a chroot
without CAP_MKNOD once hashed an empty "/dev/zero" and wrote `2>/dev/null` into the image).
`inplace` inherits them from the container itself, so it is checked for them here.
Whether a build is inplace is decided before the first stage (`inplace_reason`), because the
stages' filesystems depend on it — and an explicit choice that cannot work here fails there,
before anything is fetched; the runner itself is still chosen on the first RUN.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

from kiln.builder.inplace_root import container_hint
from kiln.errors import Remedy, SandboxError, UsageError
from kiln.sandbox import ChrootRunner, InplaceRunner, NamespacesRunner, Runner, RunSpec
from kiln.sandbox.userns import current_mapping, inside_user_namespace

log = logging.getLogger("kiln")

ISOLATIONS = ("auto", "namespaces", "chroot", "inplace")

#: What a RUN step must find in its `/` (Docker's set); `inplace` takes them from the container.
KERNEL_FILES = {
    "proc/self": stat.S_ISDIR,
    "sys/kernel": stat.S_ISDIR,
    **{f"dev/{dev}": stat.S_ISCHR for dev in ("null", "zero", "full", "random", "urandom", "tty")},
    "dev/shm": stat.S_ISDIR,
    "dev/pts": stat.S_ISDIR,
}


def inplace_available(root: Path = Path("/")) -> str | None:
    """`None` if RUN steps in `root` itself get Docker's /proc, /dev and /sys, else why not."""
    problem = InplaceRunner.available()
    if problem is not None:
        return problem
    missing = []
    for rel, is_kind in KERNEL_FILES.items():
        try:
            found = is_kind(os.stat(root / rel).st_mode)
        except OSError:
            found = False
        if not found:
            missing.append(f"/{rel}")
    if missing:
        return f"inplace isolation needs the container's {', '.join(missing)} (missing here)"
    return None


_BACKENDS: dict[str, tuple[Callable[[], str | None], Callable[[], Runner]]] = {
    "namespaces": (NamespacesRunner.available, NamespacesRunner),
    "chroot": (ChrootRunner.available, ChrootRunner),
    "inplace": (inplace_available, InplaceRunner),
}
_AUTO_ORDER = ("namespaces", "chroot")


def inplace_reason(isolation: str) -> str | None:
    """Why this build runs in `/` itself, or None: asked for, or `auto`'s last resort.

    Called before anything is fetched: an explicit `--isolation` that cannot run here fails now
    (SandboxError), not at the first RUN after the base images were pulled.
    """
    if isolation not in ISOLATIONS:
        raise UsageError(f"unknown isolation {isolation!r}; choose one of {', '.join(ISOLATIONS)}")
    if isolation != "auto":
        _require(isolation)
        return "chosen with --isolation" if isolation == "inplace" else None
    # Cheapest check first: chroot's reads /proc/self/status, namespaces' waits for its probe
    # (still running right after start-up); one working backend settles the answer.
    problems: dict[str, str | None] = {}
    for name in reversed(_AUTO_ORDER):
        problems[name] = _BACKENDS[name][0]()
        if problems[name] is None:
            return None
    inside = container_hint()
    if inside is None or os.geteuid() != 0 or inside_user_namespace():
        return None  # replacing / is only for the container's root (not root in kiln's userns)
    if inplace_available() is not None:
        return None
    return f"inside a container ({inside}); " + "; ".join(str(problems[n]) for n in _AUTO_ORDER)


def _require(isolation: str) -> None:
    problem = _BACKENDS[isolation][0]()
    if problem is not None:
        raise SandboxError(
            f"the {isolation} isolation cannot run here: {problem}",
            hint="{0} picks the best backend this environment allows",
            remedies=[Remedy("isolation", "auto")],
        )


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
        _require(isolation)
        _announce(isolation, "chosen with --isolation")
        return _BACKENDS[isolation][1]()
    reasons: list[str] = []
    for name in _AUTO_ORDER:
        available, make = _BACKENDS[name]
        problem = available()
        if problem is None:
            _announce(name, _why(name, reasons))
            return make()
        reasons.append(problem)
    if container_hint() is not None and os.geteuid() == 0 and not inside_user_namespace():
        problem = inplace_available()  # why auto did not build in place either
        reasons += [problem] if problem else []
    raise SandboxError(
        "no isolation backend can run RUN steps here: " + "; ".join(reasons),
        hint="RUN needs kiln to run as root in its container (in Kubernetes: runAsUser: 0, "
        "the default capabilities are enough; auto then builds in place, like Kaniko), or "
        "root with CAP_SYS_ADMIN, or a user allowed to create user namespaces with mounts",
    )


class ChosenOnFirstRun:
    """A Runner that gets the real one (`choose`) only when a RUN step runs.

    Why: a build without RUN needs no isolation at all (e.g. a non-root executor, where none
    works), so a stage must not ask for one just because it might run something.
    """

    def __init__(self, choose: Callable[[], Runner]) -> None:
        self._choose = choose

    def run(self, spec: RunSpec) -> int:
        """Run `spec` with the chosen backend (raises SandboxError when none can run here)."""
        return self._choose().run(spec)


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
