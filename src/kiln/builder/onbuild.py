"""ONBUILD triggers: instructions a base asks every child stage to run first.

Why its own module: a trigger is stored as Dockerfile text (in a pulled image's config, or by an
``ONBUILD`` line of an earlier stage of the same Dockerfile); when a stage is built FROM that
base, BuildKit parses each trigger again and dispatches it before the stage's own instructions,
then drops the triggers from the child's config (they fire once). Both kinds of base fire, as in
BuildKit's dockerfile frontend (``initOnBuildTriggers`` takes a base stage's ONBUILD commands
too). A trigger that is itself ONBUILD, FROM or MAINTAINER is refused, as Docker refuses it.

Where a trigger is located: BuildKit resets every trigger's location to the child's ``FROM``
line, so an error in a trigger (a parse error, a failing RUN) points at the ``FROM`` that pulled
it in. We do the same: the parsed instructions carry the FROM's file, lines and text.
"""

from __future__ import annotations

import dataclasses

from kiln.dockerfile import FromInstruction, Instruction, parse
from kiln.errors import DockerfileError


def trigger_instructions(
    triggers: tuple[str, ...], base: str, filename: str, at: FromInstruction
) -> tuple[Instruction, ...]:
    """Parse the ONBUILD triggers of ``base`` into instructions located at the FROM ``at``."""
    out: list[Instruction] = []
    for trigger in triggers:
        keyword = trigger.split(None, 1)[0].upper() if trigger.strip() else ""
        if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
            raise DockerfileError(
                f"{keyword} isn't allowed as an ONBUILD trigger (from base {base})",
                file=filename,
                line=at.line,
            )
        try:
            parsed = parse(f"FROM scratch\n{trigger}\n", filename)
        except DockerfileError as exc:
            raise DockerfileError(
                f"ONBUILD trigger {trigger!r} of base {base}: {exc.problem}",
                file=filename,
                line=at.line,
                hint=exc.hint,
            ) from exc
        out.extend(
            dataclasses.replace(ins, line=at.line, end_line=at.end_line, source=at.source)
            for ins in parsed.stages[0].instructions
        )
    return tuple(out)
