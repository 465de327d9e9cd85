"""The local layer cache (`--cache-dir`): warm builds equal cold ones, and every miss is explained.

Each build is a real `kiln build` (busybox base in the test registry, real RUN steps); the
cache report (`--cache-report`) and the image digests are what is checked. A RUN writes
16 random bytes into the image (busybox's `date` has no `%N`: seconds would repeat), so an
identical layer digest proves the RUN did not run again.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.registry_e2e.conftest import write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = [pytest.mark.registry, pytest.mark.root]

MULTI_STAGE = """\
    FROM {base} AS build
    ARG VERSION=1
    WORKDIR /src
    COPY src/ ./
    RUN echo "$VERSION" > /version && od -An -tx1 -N16 /dev/urandom > /stamp
    RUN <<EOF
    cat /version /src/app.py > /src/combined
    EOF

    FROM {base}
    COPY --from=build /src /app
    COPY --from=build /stamp /stamp
    COPY <<EOF /note
    hello
    EOF
    RUN od -An -tx1 -N16 /dev/urandom > /final-stamp
"""


def build(
    registry: RegistryServer, context: Path, cache: Path | None, out: Path, *flags: str
) -> tuple[str, dict[str, Any], str]:
    """(image digest, cache report, log) of one reproducible build saved as an OCI layout."""
    report = out / "report.json"
    cache_flags = ["--cache-dir", str(cache)] if cache is not None else []
    result = run_kiln(
        "build", "--no-push", "--reproducible", "--oci-layout-path", str(out / "oci"),
        "--image-format", "oci", "--insecure-registry", registry.host,
        "--work-dir", str(out / "work"), "--cache-report", str(report), *cache_flags,
        *flags, str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.split()[-1], json.loads(report.read_text()), result.stderr


def multi_stage_context(root: Path, base: str) -> Path:
    context = write_context(root, MULTI_STAGE.format(base=base))
    (context / "src").mkdir()
    (context / "src" / "app.py").write_text("print('app')\n")
    (context / "src" / "debug.log").write_text("noise\n")
    (context / ".dockerignore").write_text("src/*.log\n")
    return context


def test_warm_build_equals_cold_build(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = multi_stage_context(tmp_path / "ctx", base_image)
    cache = tmp_path / "cache"
    cold, cold_report, _ = build(registry, context, cache, tmp_path / "cold")
    (context / "src" / "debug.log").write_text("ignored change\n")  # .dockerignore'd
    warm, warm_report, log = build(registry, context, cache, tmp_path / "warm")
    assert warm == cold
    assert _layers(tmp_path / "warm") == _layers(tmp_path / "cold")
    assert [s["hit"] for s in cold_report["steps"]] == [False] * 8
    assert [s["hit"] for s in warm_report["steps"]] == [True] * 8, warm_report
    assert log.count(": CACHED") == 8
    # Without the cache the RUNs run again: their stamps change the image (so the test can fail).
    uncached, _, _ = build(registry, context, cache, tmp_path / "uncached", "--no-cache")
    assert uncached != cold


@pytest.mark.parametrize(
    ("change", "flags", "step", "reason"),
    [
        ("source", (), 2, "src/app.py changed (COPY src/ at Dockerfile:4)"),
        ("ignored", (), None, None),
        ("arg", ("--build-arg", "VERSION=2"), 3, "build arg VERSION changed"),
        ("unused arg", ("--build-arg", "OTHER=2"), None, None),
        ("base", ("--build-arg", "BASE={other}"), 2, "base image changed"),
        ("instruction", (), 3, "instruction changed"),
        ("mode", (), 2, "src/app.py changed (COPY src/ at Dockerfile:4)"),
    ],
)
def test_first_miss_names_the_changed_input(
    registry: RegistryServer,
    base_image: str,
    other_base: str,
    tmp_path: Path,
    change: str,
    flags: tuple[str, ...],
    step: int | None,
    reason: str | None,
) -> None:
    dockerfile = (
        "ARG BASE={base}\nFROM $BASE\nARG VERSION=1\nCOPY src/ /app/\n"
        'RUN echo "$VERSION" > /v && date +%s%N > /stamp\nRUN cat /app/app.py > /copy\n'
    )
    context = write_context(tmp_path / "ctx", dockerfile.format(base=base_image))
    (context / "src").mkdir()
    (context / "src" / "app.py").write_text("print('app')\n")
    (context / "src" / "debug.log").write_text("noise\n")
    (context / ".dockerignore").write_text("**/*.log\n")
    cache = tmp_path / "cache"
    build(registry, context, cache, tmp_path / "cold")
    if change == "source":
        (context / "src" / "app.py").write_text("print('changed')\n")
    elif change == "ignored":
        (context / "src" / "debug.log").write_text("changed\n")
    elif change == "instruction":
        text = (context / "Dockerfile").read_text().replace("> /v &&", ">/v &&")
        (context / "Dockerfile").write_text(text)
    elif change == "mode":
        (context / "src" / "app.py").chmod(0o755)
    moved = shutil.copytree(context, tmp_path / "moved")  # another checkout: same cache
    given = [flag.format(other=other_base) for flag in flags]
    _, report, _ = build(registry, moved, cache, tmp_path / "warm", *given)
    misses = [s for s in report["steps"] if not s["hit"]]
    if step is None:
        assert misses == [], misses
        return
    assert misses, report
    assert (misses[0]["step"], misses[0]["reason"]) == (step, reason)
    later = [s["reason"] for s in misses[1:]]
    assert all(r == "earlier step missed" for r in later), later


@pytest.fixture(scope="module")
def other_base(
    registry: RegistryServer, base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Another base image: the busybox base plus one file."""
    context = write_context(
        tmp_path_factory.mktemp("other"), f"FROM {base_image}\nRUN touch /other\n"
    )
    ref = f"{registry.host}/base/other:latest"
    result = run_kiln("build", "-t", ref, "--insecure-registry", registry.host, str(context))
    assert result.returncode == 0, result.stderr
    return ref


def _layers(out: Path) -> list[str]:
    """The layer digests of the image in ``out/oci``."""
    index = json.loads((out / "oci" / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "oci" / "blobs" / "sha256" / digest).read_text())
    return [layer["digest"] for layer in manifest["layers"]]


@pytest.mark.parametrize("snapshotter", ["overlay", "walk"])
def test_miss_after_hits_sees_what_running_would_have_left(
    registry: RegistryServer, base_image: str, tmp_path: Path, snapshotter: str
) -> None:
    """Cached layers (one deleting a file: a whiteout) are applied, then a RUN misses: the
    image equals one built with no cache at all."""
    dockerfile = (
        f"FROM {base_image}\nCOPY src/ /app/\n"
        "RUN rm /app/gone && mkdir -p /data && echo one > /data/f && chmod 700 /data\n"
        "RUN find /app /data -exec stat -c '%n %a %u %g %s' {} + | sort > /listing\n"
    )
    context = write_context(tmp_path / "ctx", dockerfile, {})
    (context / "src").mkdir()
    (context / "src" / "app.py").write_text("app\n")
    (context / "src" / "gone").write_text("deleted by the RUN\n")
    cache, flags = tmp_path / "cache", ("--snapshotter", snapshotter)
    build(registry, context, cache, tmp_path / "cold", *flags)
    (context / "Dockerfile").write_text(dockerfile.replace("> /listing", "> /listing2"))
    warm, report, _ = build(registry, context, cache, tmp_path / "warm", *flags)
    assert [s["hit"] for s in report["steps"]] == [True, True, False], report
    fresh, _, _ = build(registry, context, None, tmp_path / "fresh", *flags)
    assert warm == fresh
