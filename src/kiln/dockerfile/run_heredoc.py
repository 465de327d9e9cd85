"""How a RUN with heredocs is executed, decided the way BuildKit's ``dispatchRun`` decides it.

Why it exists: ``RUN <<EOF`` is not handed to a shell verbatim. When the whole command is one
heredoc, its body *is* the script (run by the shell, or, when it starts with ``#!``, written to
``/dev/pipes/<name>`` and executed directly); otherwise the heredocs are re-attached to the
command text so the shell sees real here-documents. This is pure language semantics, so it
lives with the parser and the build only carries it out.
"""

from __future__ import annotations

from dataclasses import dataclass

from kiln.dockerfile.heredoc import Heredoc, parse_marker
from kiln.dockerfile.instructions import RunInstruction

__all__ = ["PIPES_DIR", "HeredocRun", "heredoc_run"]

PIPES_DIR = "/dev/pipes"


@dataclass(frozen=True, slots=True)
class HeredocRun:
    """What to execute for a RUN with heredocs.

    ``script`` is None: run ``shell_text`` with the stage's SHELL (``/bin/sh -c shell_text``).
    ``script`` is a Heredoc: write its content, mode 0755, to ``script_path`` (a read-only
    mount in Docker) and execute that path directly, without the shell.
    """

    shell_text: str
    script: Heredoc | None = None

    @property
    def script_path(self) -> str | None:
        return f"{PIPES_DIR}/{self.script.name}" if self.script else None


def heredoc_run(run: RunInstruction) -> HeredocRun | None:
    """The execution plan for ``run``, or None when it has no heredocs (run ``command`` as is)."""
    if not run.heredocs or not isinstance(run.command, str):
        return None
    first = run.heredocs[0]
    if parse_marker(run.command) is not None:
        if first.content.startswith("#!"):
            return HeredocRun(shell_text=first.content, script=first)
        return HeredocRun(shell_text=first.content)
    text = run.command
    for heredoc in run.heredocs:
        text += "\n" + heredoc.content + heredoc.name
    return HeredocRun(shell_text=text)
