"""ONBUILD triggers: instructions a base image asks every child build to run first.

Why its own module: a trigger is stored in the base image's config as Dockerfile text; when
a stage is built FROM that image, Docker parses each trigger again and dispatches it before the
stage's own instructions, then drops the triggers from the child's config (they fire once). A
trigger that is itself ONBUILD, FROM or MAINTAINER is refused, as Docker refuses it.
"""

from __future__ import annotations

from kiln.dockerfile import Instruction, parse
from kiln.errors import DockerfileError


def trigger_instructions(triggers: tuple[str, ...], image: str) -> tuple[Instruction, ...]:
    """Parse the ONBUILD triggers of base image `image` into instructions, in order."""
    out: list[Instruction] = []
    for trigger in triggers:
        keyword = trigger.split(None, 1)[0].upper() if trigger.strip() else ""
        if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(
                f"{keyword} isn't allowed as an ONBUILD trigger (in base image {image})",
                file=f"ONBUILD of {image}",
                line=1,
            )
        parsed = parse(f"FROM scratch\n{trigger}\n", f"ONBUILD of {image}")
        out.extend(parsed.stages[0].instructions)
    return tuple(out)
