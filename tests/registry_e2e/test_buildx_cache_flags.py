"""buildx's `--cache-to`/`--cache-from` in real builds: written by one pod, read by a fresh one.

Each build runs in its own empty work dir (and, for the registry cache, its own cache dir), as a
new pod would. `--cache-to` must leave entries a later build hits; `--cache-from` alone must
hit them and add nothing, which a changed file (a miss that would otherwise be stored) shows.
The same holds through ``kiln.build(cache_from=..., cache_to=...)``.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

import kiln
from kiln.errors import UsageError
from tests.registry_e2e.conftest import unique, write_context
from tests.support.registry_server import RegistryServer
from tests.support.tools import run_kiln

pytestmark = pytest.mark.registry

DOCKERFILE = """\
FROM {base}
COPY app.py /app/
RUN cat /app/app.py > /copy && date +%s%N > /stamp
"""


def _build(registry: RegistryServer, context: Path, pod: Path, *flags: str) -> list[bool]:
    """A reproducible build in ``pod`` (its own work dir): each step's hit or miss."""
    result = run_kiln(
        "build", "--reproducible", "--no-push", "--insecure-registry", registry.host,
        "--work-dir", str(pod / "work"), "--cache-report", str(pod / "report.json"),
        *flags, str(context),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps: list[dict[str, Any]] = json.loads((pod / "report.json").read_text())["steps"]
    return [step["hit"] for step in steps]


def _tags(registry: RegistryServer, repo: str) -> set[str]:
    listed = subprocess.run(
        ["skopeo", "list-tags", "--tls-verify=false", f"docker://{repo}"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return set(json.loads(listed.stdout)["Tags"])


def test_registry_cache_to_then_from_in_a_fresh_pod(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image), {"app.py": "1"})
    repo = f"{registry.host}/{unique()}"
    written = _build(
        registry, context, tmp_path / "pod1", "--cache-dir", str(tmp_path / "pod1" / "cache"),
        f"--cache-to=type=registry,ref={repo},mode=max",
    )  # fmt: skip
    assert written == [False, False]
    tags = _tags(registry, repo)
    assert len(tags) == 2, tags
    hits = _build(
        registry, context, tmp_path / "pod2", "--cache-dir", str(tmp_path / "pod2" / "cache"),
        f"--cache-from=type=registry,ref={repo}",
    )  # fmt: skip
    assert hits == [True, True]
    # --cache-from alone is read-only: the misses of a changed file are not pushed.
    (context / "app.py").write_text("2")
    assert _build(registry, context, tmp_path / "pod3", f"--cache-from={repo}") == [False, False]
    assert _tags(registry, repo) == tags


def test_local_cache_to_then_from(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", DOCKERFILE.format(base=base_image), {"app.py": "1"})
    cache = tmp_path / "shared-cache"
    assert _build(registry, context, tmp_path / "pod1", f"--cache-to=type=local,dest={cache}") == [
        False,
        False,
    ]
    entries = sorted((cache / "layer-cache" / "entries").iterdir())
    assert len(entries) == 2
    assert _build(registry, context, tmp_path / "pod2", f"--cache-from=type=local,src={cache}") == [
        True,
        True,
    ]
    (context / "app.py").write_text("2")
    changed = _build(registry, context, tmp_path / "pod3", f"--cache-from=type=local,src={cache}")
    assert changed == [False, False]
    assert sorted((cache / "layer-cache" / "entries").iterdir()) == entries  # nothing added


def test_the_api_takes_the_same_specs(
    registry: RegistryServer, base_image: str, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx", f"FROM {base_image}\nCOPY app.py /app/\n", {"app.py": "1"}
    )
    repo = f"{registry.host}/{unique()}"
    common: dict[str, Any] = {"no_push": True, "insecure_registries": [registry.host]}
    kiln.build(context, cache_to=f"type=registry,ref={repo}", work_dir=tmp_path / "w1", **common)
    assert len(_tags(registry, repo)) == 1
    report = tmp_path / "report.json"
    kiln.build(
        context, cache_from=[f"type=registry,ref={repo}"], cache_report=report,
        work_dir=tmp_path / "w2", **common,
    )  # fmt: skip
    assert [s["hit"] for s in json.loads(report.read_text())["steps"]] == [True]
    with pytest.raises(UsageError, match=r"^cache_to .*: mode=min is not supported"):
        kiln.build(context, cache_to=f"type=registry,ref={repo},mode=min", **common)
