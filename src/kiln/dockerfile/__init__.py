"""kiln.dockerfile: the Dockerfile front end (parser, typed instructions, shell-word lexer).

Why it exists: everything kiln knows about the Dockerfile *language* lives here, with no I/O,
in three layers that depend one way only: ``syntax`` reads lines (directives, continuations,
heredocs) into nodes, ``convert`` turns nodes into typed ``instructions`` grouped into stages by
``document``, and ``lexer`` expands words for the build at dispatch time (each instruction's
``expand(Expander(env, escape))`` says which of its words). See
docs/internals.md for the contract.
"""

from kiln.dockerfile.diagnostics import DockerfileWarning
from kiln.dockerfile.document import Dockerfile, Stage, parse
from kiln.dockerfile.global_scope import check_from_lines, global_args
from kiln.dockerfile.heredoc import Heredoc
from kiln.dockerfile.instructions import (
    AddInstruction,
    ArgInstruction,
    CmdInstruction,
    CopyInstruction,
    EntrypointInstruction,
    EnvInstruction,
    ExposeInstruction,
    FromInstruction,
    HealthcheckInstruction,
    Instruction,
    LabelInstruction,
    MaintainerInstruction,
    OnbuildInstruction,
    RunInstruction,
    ShellInstruction,
    StopsignalInstruction,
    UserInstruction,
    VolumeInstruction,
    WorkdirInstruction,
)
from kiln.dockerfile.jsonform import instruction_to_dict
from kiln.dockerfile.lexer import (
    MAX_NESTING,
    Expander,
    ExpansionError,
    ShellLexer,
    expand_word,
    expand_words,
)
from kiln.dockerfile.run_heredoc import HeredocRun, heredoc_run

__all__ = [
    "MAX_NESTING",
    "AddInstruction",
    "ArgInstruction",
    "CmdInstruction",
    "CopyInstruction",
    "Dockerfile",
    "DockerfileWarning",
    "EntrypointInstruction",
    "EnvInstruction",
    "Expander",
    "ExpansionError",
    "ExposeInstruction",
    "FromInstruction",
    "HealthcheckInstruction",
    "Heredoc",
    "HeredocRun",
    "Instruction",
    "LabelInstruction",
    "MaintainerInstruction",
    "OnbuildInstruction",
    "RunInstruction",
    "ShellInstruction",
    "ShellLexer",
    "Stage",
    "StopsignalInstruction",
    "UserInstruction",
    "VolumeInstruction",
    "WorkdirInstruction",
    "check_from_lines",
    "expand_word",
    "expand_words",
    "global_args",
    "heredoc_run",
    "instruction_to_dict",
    "parse",
]
