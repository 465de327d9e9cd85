"""The import rules of docs/internals.md, checked on every module's actual imports."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kiln"
INTERNALS = SRC.parents[1] / "docs" / "internals.md"

ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "closeable": set(),
    "net": {"errors"},
    "dockerfile": {"errors"},
    "image": {"errors"},
    "fs": {"errors"},
    "context": {"errors", "fs", "net"},
    "sandbox": {"errors", "fs"},
    "registry": {"errors", "image", "net"},
    "builder": {"errors", "net", "dockerfile", "image", "fs", "context", "sandbox", "registry"},
    "commands": {"errors", "builder", "fs", "image", "registry"},
    "cli": {"errors", "builder", "commands"},
}

# Leaf modules every package may import.
LEAVES = {"errors", "closeable"}


def _kiln_imports(path: Path) -> set[str]:
    """Top-level kiln packages imported by one source file (absolute imports only)."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "kiln" and len(parts) > 1:
                found.add(parts[1])
    return found


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if _package_of(p) in ALLOWED)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_module_respects_layering(path: Path) -> None:
    package = _package_of(path)
    imported = _kiln_imports(path) - {package} - LEAVES
    forbidden = imported - ALLOWED[package]
    assert not forbidden, f"kiln.{package} may not import kiln.{sorted(forbidden)}"


def test_every_package_is_covered() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), f"add {packages - set(ALLOWED)} to ALLOWED"
    assert len(_sources()) > 20


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    """The checker itself must be able to fail."""
    bad = tmp_path / "bad.py"
    bad.write_text("from kiln.registry import Reference\nimport kiln.builder.builder\n")
    assert _kiln_imports(bad) == {"registry", "builder"}


def test_the_documented_rules_are_the_checked_ones() -> None:
    """docs/internals.md's table says what this test enforces, package for package."""
    rows = re.findall(r"^\| `kiln\.(\w+)` \| (.*) \|$", INTERNALS.read_text(), re.M)
    documented = {
        package: set() if allowed == "nothing" else set(re.findall(r"`(\w+)`", allowed))
        for package, allowed in rows
    }
    assert documented == ALLOWED
