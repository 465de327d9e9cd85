"""Equivalence: every case built by kiln and by buildah must give the same image.

"Same" means the same final filesystem (paths, types, modes, owners, sizes, content, link
targets, hard-link counts, xattrs), the same runtime config fields and the same number of
layers. Where buildah differs from Docker (BuildKit) the case's expect.json states Docker's
result and the reason, and that is asserted instead (see tests/equivalence/README.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import pytest

import kiln
from kiln.dockerfile import FromInstruction, WorkdirInstruction, parse
from kiln.errors import KilnError
from tests.equivalence.cases import Case, load_cases
from tests.equivalence.conftest import Prepared
from tests.equivalence.image_view import ImageView, diff_config, diff_files, read_layout

CASES = load_cases()


@pytest.fixture(scope="session")
def kiln_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One blob cache for all kiln builds: the base image is downloaded once."""
    return tmp_path_factory.mktemp("kiln-cache")


def workdir_layers(dockerfile: Path, target: str | None) -> int:
    """WORKDIR steps in the built stage and the stages it is FROM: Docker makes a layer for
    each (BuildKit's mkdir, even when the directory exists); buildah makes none."""
    parsed = parse(dockerfile.read_text())
    stage = parsed.stage(target) if target else parsed.stages[-1]
    count = 0
    while stage is not None:
        count += sum(
            1
            for ins in stage.instructions
            if isinstance(ins, WorkdirInstruction) and ins.path.strip() != "/"
        )
        base: FromInstruction = stage.from_
        earlier = parsed.stage(base.image)
        stage = earlier if earlier is not None and earlier.index < stage.index else None
    return count


def build_with_kiln(
    prepared: Prepared, reg: str, cache: Path, out: Path, monkeypatch: pytest.MonkeyPatch
) -> KilnError | None:
    case = prepared.case
    for name, value in case.env_build_args.items():
        monkeypatch.setenv(name, value)
    build_args: dict[str, str | None] = {**case.build_args}
    build_args.update({name: None for name in case.env_build_args})
    try:
        kiln.build_image(
            prepared.context,
            dockerfile=prepared.context / "Dockerfile",
            no_push=True,
            oci_layout_path=out,
            image_format="oci",  # umoci reads OCI manifests only
            insecure_registries=[reg],
            build_args=build_args,
            target=case.target,
            cache_dir=cache,
        )
    except KilnError as exc:
        return exc
    return None


def docker_expectation(case: Case, reference: ImageView, workdirs: int) -> ImageView:
    """Buildah's result adjusted to Docker's where the case documents a difference."""
    docker: dict[str, Any] = case.docker
    files = {path: dict(entry) for path, entry in reference.files.items()}
    for path, override in docker.get("files", {}).items():
        if override is None:
            files.pop(path, None)
        else:
            files[path] = {**files.get(path, {}), **override}
    config = {**reference.config, **docker.get("config", {})}
    layers = docker.get("layers", reference.layers + workdirs)
    return ImageView(files, config, layers, reference.history)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_equivalent_to_reference(
    case: Case,
    prepared_cases: dict[str, Prepared],
    substitutions: dict[str, str],
    kiln_cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="kiln")
    prepared = prepared_cases[case.name]
    error = build_with_kiln(
        prepared, substitutions["REG"], kiln_cache, tmp_path / "kiln", monkeypatch
    )
    reference = prepared.reference.result(timeout=900)
    if case.error is not None:
        assert error is not None, "kiln built a Dockerfile that Docker rejects"
        assert case.error in str(error)
        if "reason" not in case.docker:
            assert reference.layout is None, "buildah accepted it: document why in expect.json"
        return
    assert error is None, f"kiln failed: {error}"
    assert reference.layout is not None, f"buildah failed:\n{reference.output}"
    ours = read_layout(tmp_path / "kiln", tmp_path / "kiln-unpacked")
    theirs = read_layout(reference.layout, tmp_path / "ref-unpacked")
    workdirs = workdir_layers(prepared.context / "Dockerfile", case.target)
    expected = docker_expectation(case, theirs, workdirs)
    problems = diff_files(expected.files, ours.files) + diff_config(expected.config, ours.config)
    if expected.layers != ours.layers:
        problems.append(f"layers: expected {expected.layers}, kiln {ours.layers}")
    for path, epoch in case.expect.get("kiln_mtimes", {}).items():
        mtime = int(os.lstat(tmp_path / "kiln-unpacked" / "bundle" / "rootfs" / path).st_mtime)
        if mtime != epoch:
            problems.append(f"/{path}: mtime {mtime}, expected {epoch}")
    for text in case.expect.get("kiln_warnings", []):
        if caplog.text.count(text) != 1:
            problems.append(f"warning {text!r} logged {caplog.text.count(text)} times, not once")
    assert not problems, "\n".join(problems)
