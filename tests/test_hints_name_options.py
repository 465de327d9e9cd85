"""Library hints name options as ``Remedy`` data, never as CLI flags (issue 10.22).

Why a source check: a hint written as ``"use --snapshotter walk"`` reads fine on the command line
and is wrong for every Python caller, and nothing else would notice. Every string that feeds a
hint (a ``hint=`` argument, or a constant whose name ends in ``HINT``) in ``src/kiln`` outside
the CLI is searched for ``--`` followed by a flag the ``kiln`` command accepts; and every
option a ``Remedy`` names must be a real option field with a flag the CLI knows.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

from kiln.builder.options import BuildOptions, RegistryOptions
from kiln.cli.hints import as_flag
from kiln.cli.main import make_parser
from kiln.errors import Remedy

SRC = Path(__file__).resolve().parents[1] / "src" / "kiln"

#: Dockerfile flags that share a name with a CLI flag, where a hint really means the
#: Dockerfile's (file relative to src/kiln, flag). Both doors show these the same way.
DOCKERFILE_FLAGS = {
    ("build/remote_source.py", "--checksum"),
}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        found.update(s for s in action.option_strings if s.startswith("--"))
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _flags(sub)
    return found


CLI_FLAGS = _flags(make_parser())


def _strings(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def _hint_texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "hint":
            yield from ((node.value.lineno, text) for text in _strings(node.value))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if node.value is not None and any(name.endswith("HINT") for name in names):
                yield from ((node.lineno, text) for text in _strings(node.value))


def _library_files() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "cli" not in p.relative_to(SRC).parts)


def test_no_library_hint_spells_a_cli_flag() -> None:
    assert "--work-dir" in CLI_FLAGS and "--isolation" in CLI_FLAGS  # the parser was read
    offenders = []
    for path in _library_files():
        rel = path.relative_to(SRC).as_posix()
        for line, text in _hint_texts(ast.parse(path.read_text(), str(path))):
            for flag in re.findall(r"--[a-z][a-z0-9-]*", text):
                if flag in CLI_FLAGS and (rel, flag) not in DOCKERFILE_FLAGS:
                    offenders.append(f"{rel}:{line}: {flag} in {text!r}")
    assert not offenders, "hints must name options with Remedy(...):\n" + "\n".join(offenders)


def test_the_check_finds_a_flag_in_a_hint() -> None:
    """The scanner itself sees both spellings it must catch (else the test above proves nothing)."""
    source = 'raise E("x", hint=f"use --snapshotter {w}")\nPRIVILEGE_HINT = "try --isolation x"\n'
    texts = [text for _, text in _hint_texts(ast.parse(source))]
    assert any("--snapshotter" in t for t in texts) and any("--isolation" in t for t in texts)


def _remedy_options() -> set[str]:
    options: set[str] = set()
    for path in _library_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Remedy"
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                options.add(str(node.args[0].value))
    return options


def test_every_remedy_is_an_option_field_with_a_cli_flag() -> None:
    fields = {f.name for cls in (BuildOptions, RegistryOptions) for f in dataclasses.fields(cls)}
    options = _remedy_options()
    assert {"isolation", "snapshotter", "work_dir", "platform"} <= options  # the scan works
    assert options <= fields, options - fields
    unknown = {o: as_flag(Remedy(o)) for o in options if as_flag(Remedy(o)) not in CLI_FLAGS}
    assert not unknown, f"cli/hints.py spells these as flags the CLI lacks: {unknown}"
