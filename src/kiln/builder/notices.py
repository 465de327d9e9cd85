"""What kiln tells the user about a Dockerfile before building it.

Why: the parser returns warnings as data (deprecated MAINTAINER, legacy `ENV k v`, ...); the build
prints them once, through the "kiln" logger, with file and line, the way BuildKit reports its
checks. A `# syntax=` directive names a BuildKit frontend image kiln does not run: it is accepted
and the user is told it was ignored.
"""

from __future__ import annotations

import logging

from kiln.dockerfile import Dockerfile

log = logging.getLogger("kiln")


def report_dockerfile(dockerfile: Dockerfile) -> None:
    """Log the `# syntax=` notice and every parser warning, once each."""
    syntax = dockerfile.directives.get("syntax")
    if syntax:
        log.info(
            "%s: ignoring '# syntax=%s': kiln uses its own Dockerfile frontend",
            dockerfile.filename,
            syntax,
        )
    for warning in dockerfile.warnings:
        log.warning("%s:%s", dockerfile.filename, warning)
