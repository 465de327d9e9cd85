"""The global scope of a build: ARGs before the first FROM, and every FROM line expanded with them.

Why it exists: these words are expanded before any stage is built, outside dispatch (which
locates its own errors), so a bad ``${...}`` there used to escape as a bare ``ExpansionError``.
BuildKit resolves the global ARGs and then expands the base name and ``--platform`` of *every*
stage up front, failing with the line of the offending ARG or FROM; this module does the same,
purely (values in, values or a located ``DockerfileError`` out).
"""

from __future__ import annotations

from collections.abc import Mapping

from kiln.dockerfile.document import Dockerfile
from kiln.dockerfile.lexer import Expander, ExpansionError, expand_word
from kiln.errors import DockerfileError

__all__ = ["check_from_lines", "global_args"]


def _expand(word: str, env: Mapping[str, str], dockerfile: Dockerfile, line: int) -> str:
    try:
        return expand_word(word, env, dockerfile.escape)
    except ExpansionError as exc:
        raise DockerfileError(str(exc), file=dockerfile.filename, line=line) from None


def global_args(
    dockerfile: Dockerfile,
    predefined: Mapping[str, str],
    build_args: Mapping[str, str | None],
    used: set[str],
) -> dict[str, str]:
    """The global ARG values (BuildKit's ``buildMetaArgs``) over the ``predefined`` ones.

    A ``--build-arg`` wins over the default, which is then never expanded; a default is
    expanded with the global values declared before it. Global ARG names are not expanded
    (BuildKit keeps them literal, unlike stage ARGs). Names given as build args are added to
    ``used``.
    """
    env = dict(predefined)
    for instruction in dockerfile.meta_args:
        for name, default in instruction.args:
            given = build_args.get(name)
            if name in build_args:
                used.add(name)
            if given is not None:
                env[name] = given
            elif default is not None:
                env[name] = _expand(default, env, dockerfile, instruction.line)
    return env


def check_from_lines(dockerfile: Dockerfile, meta_env: Mapping[str, str]) -> None:
    """Expand every stage's base name and ``--platform``; refuse, located, what cannot be.

    Like BuildKit, every stage is checked, built or not, and an empty base name is an error.
    """
    expander = Expander(meta_env, dockerfile.escape)
    for stage in dockerfile.stages:
        from_ = stage.from_
        try:
            expanded = from_.expand(expander)
        except ExpansionError as exc:
            raise DockerfileError(str(exc), file=dockerfile.filename, line=from_.line) from None
        if not expanded.image:
            raise DockerfileError(
                f"base name ({from_.image}) should not be blank",
                file=dockerfile.filename,
                line=from_.line,
            )
