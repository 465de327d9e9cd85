"""Starting the RUN sandbox before kiln has loaded itself.

Why its own module: the CLI calls :func:`warm_up` first thing, before it imports the builder,
the registry client and its HTTP client (about a tenth of a second of module loading on one core).
The sandbox fork server is a separate interpreter, so it boots, and runs the namespaces probe
`select_runner` will ask for, on another core meanwhile; by the first RUN both are ready and
nobody waits for them. So this module imports next to nothing at import time.
"""

from __future__ import annotations

#: The isolations whose backend (``namespaces``) runs through the fork server and its probe.
_WARMED = ("auto", "namespaces")


def warm_up(isolation: str) -> None:
    """Start what the `namespaces` backend needs (its helper server, its probe) in the background.

    Nothing happens for the other isolations, nor where the backend's cheap checks (Linux, root,
    CAP_SYS_ADMIN) fail; calling it again while a probe is under way does nothing either.
    """
    if isolation in _WARMED:
        # Not at the top: the CLI imports this module for every command, and the backend
        # costs 25 ms of imports (`-X importtime`) that `kiln --help` or `kiln login` never need.
        from kiln.sandbox.namespaces import NamespacesRunner

        NamespacesRunner.warm_up()


def isolation_if_building(argv: list[str]) -> str | None:
    """The ``--isolation`` a ``build``/``executor`` command line asks for (``auto`` if none),
    read without parsing the whole command line; None for other commands or ``--help``.

    A guess that misses (an abbreviated flag) only means the warm-up happens later, after the
    real parse; it never changes which backend runs.
    """
    if not argv or argv[0] not in ("build", "executor"):
        return None
    isolation = "auto"
    for index, word in enumerate(argv):
        if word == "--":
            break
        if word in ("-h", "--help"):
            return None
        if word == "--isolation" and index + 1 < len(argv):
            isolation = argv[index + 1]
        elif word.startswith("--isolation="):
            isolation = word.partition("=")[2]
    return isolation
