"""Real builds: a `.dockerignore` or `COPY --exclude` pattern that Docker refuses fails the build
with the file, the line and the pattern, before anything is copied."""

from __future__ import annotations

from pathlib import Path

from tests.support.tools import run_kiln


def _context(tmp_path: Path, dockerfile: str, ignore: str | None = None) -> Path:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile)
    (context / "Local-Only").write_text("x\n")
    if ignore is not None:
        (context / ".dockerignore").write_text(ignore)
    return context


def _failed_build(context: Path, tmp_path: Path) -> str:
    result = run_kiln("build", "--no-push", "--tar-path", str(tmp_path / "o.tar"), str(context))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.tar").exists()
    return result.stderr


def test_dockerignore_with_a_backwards_range_names_file_and_line(tmp_path: Path) -> None:
    context = _context(tmp_path, "FROM scratch\nCOPY . /\n", "*.log\n# local files\n[Local-Only]\n")
    stderr = _failed_build(context, tmp_path)
    expected = (
        f"{context / '.dockerignore'}:3: syntax error in pattern: '[Local-Only]' "
        "(invalid character class range l-O)"
    )
    assert expected in stderr


def test_copy_exclude_with_a_backwards_range_names_the_dockerfile_line(tmp_path: Path) -> None:
    dockerfile = "FROM scratch\nCOPY Local-Only /a\nCOPY --exclude=x[z-a] . /b/\n"
    stderr = _failed_build(_context(tmp_path, dockerfile), tmp_path)
    assert "syntax error in pattern: 'x[z-a]' (invalid character class range z-a)" in stderr
    assert f"{tmp_path / 'ctx' / 'Dockerfile'}:3\n" in stderr
