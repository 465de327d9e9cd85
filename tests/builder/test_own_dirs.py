"""kiln's work and cache dirs are never build context, wherever `--work-dir`/`--cache-dir` put
them (issue 10.16: with the work dir inside the context, `COPY .` walked kiln's own scratch files
while kiln kept writing them). Like Kaniko with its own directory, kiln ignores them and says so;
it never falls back to the current directory (often the context) for its work dir.
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
from pathlib import Path

import pytest

from kiln.builder import own_dirs, workspace
from kiln.builder.builder import build
from kiln.builder.options import BuildOptions
from kiln.cli.hints import render_for_cli
from kiln.context import LocalContext
from kiln.errors import BuildError


def _layer_names(archive: Path) -> list[str]:
    """Every entry name of every layer of a `docker save`-style archive (read with tarfile)."""
    names = []
    with tarfile.open(archive) as outer:
        reader = outer.extractfile("manifest.json")
        assert reader is not None
        for layer in json.load(reader)[0]["Layers"]:
            blob = outer.extractfile(layer)
            assert blob is not None
            with tarfile.open(fileobj=blob) as inner:
                names += [name.removeprefix("./").rstrip("/") for name in inner.getnames()]
    return names


def test_work_and_cache_dirs_inside_the_context_are_not_copied(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    context = tmp_path / "ctx"
    (context / "src").mkdir(parents=True)
    (context / "src" / "app.py").write_text("print('hi')\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    # A `!` line cannot bring kiln's own dirs back, and a glob character is taken literally.
    (context / ".dockerignore").write_text("!.kiln-work\n!cache[1]\n")
    (context / "cache1").mkdir()  # what the unescaped pattern "cache[1]" would match
    (context / "cache1" / "keep.txt").write_text("context\n")
    archive = tmp_path / "out.tar"
    options = BuildOptions(
        context=f"dir://{context}",
        no_push=True,
        tar_path=archive,
        work_dir=context / ".kiln-work",
        cache_dir=context / "cache[1]",
    )
    with caplog.at_level(logging.INFO, logger="kiln"):
        build(options)
    assert sorted(_layer_names(archive)) == [
        "ctx", "ctx/.dockerignore", "ctx/Dockerfile", "ctx/cache1", "ctx/cache1/keep.txt",
        "ctx/src", "ctx/src/app.py",
    ]  # fmt: skip
    assert (context / "cache[1]").is_dir()  # the cache was used, just not read as context
    messages = [r.getMessage() for r in caplog.records]
    # No RUN, so no isolation was chosen: a non-root executor, where none works, can build this.
    assert not any(m.startswith("Isolation: ") for m in messages)
    said = [m for m in messages if m.startswith("Context: ")]
    assert said == [
        f"Context: kiln's own {context}/.kiln-work, {context}/cache[1] inside the context, "
        "never read as context"
    ]


def test_only_dirs_strictly_inside_the_context_are_excluded(tmp_path: Path) -> None:
    context = LocalContext(root=tmp_path / "ctx")
    (tmp_path / "ctx" / "a").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "ctx" / "a")
    own = [tmp_path / "ctx", tmp_path, tmp_path / "elsewhere", tmp_path / "link"]
    assert own_dirs.inside(context.root, own) == ["a"]  # the link resolves into the context
    assert own_dirs.without_own_dirs(context, own[:3]) is context  # nothing to exclude
    narrowed = own_dirs.without_own_dirs(context, own)
    assert narrowed.ignore.matches("a/x") and not narrowed.ignore.matches("b")


def test_the_work_dir_never_falls_back_to_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Python's tempfile uses the current directory when no temporary directory is usable
    # (kiln's executor image once had no /tmp: the work dir landed in the build context).
    monkeypatch.chdir(tmp_path)
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: os.getcwd())
    with pytest.raises(BuildError, match="no usable temporary directory") as caught:
        workspace.Workspace(None, None)
    assert "point work_dir=... at a writable directory" in str(caught.value)
    assert "point --work-dir at a writable directory" in render_for_cli(caught.value)

    def nothing_usable() -> str:
        raise FileNotFoundError("No usable temporary directory found in ['/tmp']")

    monkeypatch.setattr(tempfile, "gettempdir", nothing_usable)
    with pytest.raises(BuildError, match=r"tried /tmp, /var/tmp, /usr/tmp; uid \d+ needs"):
        workspace.Workspace(None, None)
    assert list(tmp_path.iterdir()) == []
    # Named explicitly, the current directory is a choice, not a fallback.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    with workspace.Workspace(None, None) as made:
        assert made.root.parent == tmp_path
