"""RUN heredoc execution plans, after BuildKit's dispatchRun (simple, shebang, reconstituted)."""

from __future__ import annotations

import pytest

from kiln.dockerfile import RunInstruction, parse
from kiln.dockerfile.run_heredoc import heredoc_run

CASES: list[tuple[str, str | None, str | None]] = [
    # (RUN text, expected shell text, expected script path)
    ("RUN echo hi", None, None),
    ('RUN ["sh", "-c", "x"]', None, None),
    ("RUN <<EOF\necho a\necho b\nEOF", "echo a\necho b\n", None),
    ("RUN <<-EOF\n\techo a\n\tEOF", "echo a\n", None),
    (
        "RUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF",
        "#!/usr/bin/env python3\nprint(1)\n",
        "/dev/pipes/EOF",
    ),
    ("RUN bash -xe <<EOF\necho a\nEOF", "bash -xe <<EOF\necho a\nEOF", None),
    ("RUN <<A cat - <<B > /o\na\nA\nb\nB", "<<A cat - <<B > /o\na\nA\nb\nB", None),
    ("RUN <<EOF cat\n#!x\nEOF", "<<EOF cat\n#!x\nEOF", None),
]


@pytest.mark.parametrize(("text", "shell_text", "script_path"), CASES)
def test_heredoc_run(text: str, shell_text: str | None, script_path: str | None) -> None:
    run = parse("FROM a\n" + text + "\n").stages[0].instructions[0]
    assert isinstance(run, RunInstruction)
    plan = heredoc_run(run)
    if shell_text is None:
        assert plan is None
        return
    assert plan is not None
    assert plan.shell_text == shell_text
    assert plan.script_path == script_path
