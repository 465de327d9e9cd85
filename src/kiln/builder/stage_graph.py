"""Which stages a build needs, in which order.

Why: `--target` names one stage; only the stages it depends on (through `FROM <stage>` and
`COPY --from=<stage>`, also in an ONBUILD trigger of a base stage) are built, as BuildKit does,
so a broken unused stage does not fail the build. Stage references are names
(case-insensitive) or indexes.
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.builder.onbuild import trigger_instructions
from kiln.dockerfile import (
    AddInstruction,
    CopyInstruction,
    Dockerfile,
    OnbuildInstruction,
    Stage,
    expand_word,
)
from kiln.errors import UsageError


def find_stage(stages: tuple[Stage, ...], ref: str, before: int | None = None) -> Stage | None:
    """Resolve a stage name or index; with `before`, only stages earlier than that index."""
    candidates = stages if before is None else stages[:before]
    if ref.isdigit():
        index = int(ref)
        return candidates[index] if index < len(candidates) else None
    lowered = ref.lower()
    for stage in candidates:
        if stage.name is not None and stage.name.lower() == lowered:
            return stage
    return None


def target_stage(dockerfile: Dockerfile, target: str | None) -> Stage:
    """The stage to build: `--target`, or the last one."""
    if target is None:
        return dockerfile.stages[-1]
    stage = find_stage(dockerfile.stages, target)
    if stage is None:
        names = ", ".join(s.name for s in dockerfile.stages if s.name) or "none"
        raise UsageError(f"target stage {target!r} could not be found (stages: {names})")
    return stage


def stage_dependencies(
    dockerfile: Dockerfile, stage: Stage, meta_env: Mapping[str, str]
) -> list[Stage]:
    """The earlier stages that `stage` reads from directly."""
    deps: list[Stage] = []
    base = find_stage(
        dockerfile.stages,
        expand_word(stage.from_.image, meta_env, dockerfile.escape),
        before=stage.index,
    )
    instructions = stage.instructions
    if base is not None:
        deps.append(base)
        triggers = tuple(i.trigger for i in base.instructions if isinstance(i, OnbuildInstruction))
        fired = trigger_instructions(triggers, base.from_.image, dockerfile.filename, stage.from_)
        instructions = (*fired, *instructions)  # a trigger may COPY --from another stage
    for ins in instructions:
        if isinstance(ins, CopyInstruction | AddInstruction) and ins.from_:
            dep = find_stage(dockerfile.stages, ins.from_, before=stage.index)
            if dep is not None:
                deps.append(dep)
    return deps


def build_order(dockerfile: Dockerfile, target: Stage, meta_env: Mapping[str, str]) -> list[Stage]:
    """The stages needed for target, in Dockerfile order."""
    needed: set[int] = set()
    pending = [target]
    while pending:
        stage = pending.pop()
        if stage.index in needed:
            continue
        needed.add(stage.index)
        pending.extend(stage_dependencies(dockerfile, stage, meta_env))
    return [s for s in dockerfile.stages if s.index in needed]
